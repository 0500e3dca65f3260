// Models with no Python: the authors' .pth read directly (under any file name) through the API
// and the CLI, named models fetched from a server, checked against their sha256 and cached, float16
// model files, and hostile checkpoints refused with messages.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { convertModel, createUpscaler, KNOWN_MODELS, readImage } from '../../wasm/node.js';
import { MODELS } from '../../wasm/models.js';
import { sha256 } from '../../wasm/core.js';
import { IMDN, ROOT, SET5, psnrY, randomModel } from './helpers.mjs';

const CHECKPOINTS = join(IMDN, 'checkpoints');
const haveCheckpoints = existsSync(join(CHECKPOINTS, 'IMDN_x4.pth')) && existsSync(join(IMDN, 'datasets', 'Set5_HR', 'baby.bmp'));
const skipOfficial = !haveCheckpoints && "needs the authors' checkpoints and Set5 in ../shared";
const tmp = mkdtempSync(join(tmpdir(), 'imdn-models-'));

// The paper table (../shared/imdn/README.md): Set5 Y-PSNR per model, and its scale.
const TABLE = [
  ['x2', 2, 37.996],
  ['x3', 3, 34.36],
  ['x4', 4, 32.21],
  ['rtc', 2, 37.311],
  ['rte', 2, 35.41],
];

async function set5(up, s) {
  let sum = 0;
  for (const name of SET5) {
    const lr = await readImage(join(IMDN, 'datasets', 'Set5_LR', `x${s}`, `${name}x${s}.bmp`));
    const hr = await readImage(join(IMDN, 'datasets', 'Set5_HR', `${name}.bmp`));
    sum += psnrY(await up.upscale(lr), hr, s);
  }
  return sum / SET5.length;
}

// A copy of an official checkpoint under a name that says nothing about it.
function renamed(name) {
  const to = join(tmp, `weights-${name}.bin`);
  copyFileSync(join(CHECKPOINTS, MODELS[name].checkpoint), to);
  return to;
}

test('models.js and models/manifest.json name the same files with the same sha256', () => {
  const manifest = JSON.parse(readFileSync(join(ROOT, 'models', 'manifest.json'), 'utf8'));
  const listed = Object.fromEntries(manifest.models.map((m) => [m.name, { checkpoint: m.checkpoint, sha256: m.sha256, arch: m.arch, scale: m.scale }]));
  assert.deepEqual(JSON.parse(JSON.stringify(MODELS)), listed);
  assert.deepEqual({ ...KNOWN_MODELS }, Object.fromEntries(manifest.models.map((m) => [m.name, m.checkpoint])));
});

test("the authors' .pth, renamed, through the API: Set5 as in the paper, and float16 files within 0.001 dB", { skip: skipOfficial }, async () => {
  const rows = [];
  for (const [name, s, paper] of TABLE) {
    const file = renamed(name);
    const up = await createUpscaler({ model: file, workers: 2 });
    const f32 = await set5(up, s);
    up.dispose();
    assert.ok(Math.abs(f32 - paper) <= 0.005, `${name} from .pth: ${f32.toFixed(4)} dB, paper ${paper}`);
    const half = await convertModel(file, { f16: true });
    const full = await convertModel(file);
    const upHalf = await createUpscaler({ model: half.data, workers: 2 });
    const f16 = await set5(upHalf, s);
    upHalf.dispose();
    rows.push(
      `# ${name.padEnd(4)} float32 ${f32.toFixed(4)} dB ${(full.data.length / 1024).toFixed(0).padStart(5)} KiB   float16 ${f16.toFixed(4)} dB ${(half.data.length / 1024).toFixed(0).padStart(5)} KiB   (.pth ${(statSync(file).size / 1024).toFixed(0)} KiB)`,
    );
    assert.ok(Math.abs(f16 - f32) <= 0.001, `${name} float16: ${f16.toFixed(4)} dB vs ${f32.toFixed(4)}\n${rows.join('\n')}`);
    assert.ok(half.data.length < (name.startsWith('x') ? 0.52 : 0.9) * full.data.length, `${name}: float16 file of ${half.data.length} bytes`);
  }
  console.log(rows.join('\n'));
});

test("the authors' .pth, renamed, through the CLI: Set5 as in the paper; convert writes .imdn and --f16", { skip: skipOfficial }, async () => {
  const cli = join(ROOT, 'wasm', 'cli.js');
  for (const [name, s, paper] of TABLE) {
    const file = renamed(name);
    let sum = 0;
    for (const img of SET5) {
      const out = join(tmp, `${name}-${img}.png`);
      execFileSync(process.execPath, [cli, join(IMDN, 'datasets', 'Set5_LR', `x${s}`, `${img}x${s}.bmp`), '-o', out, '--model', file, '-q']);
      sum += psnrY(await readImage(out), await readImage(join(IMDN, 'datasets', 'Set5_HR', `${img}.bmp`)), s);
    }
    assert.ok(Math.abs(sum / SET5.length - paper) <= 0.005, `${name} CLI: ${(sum / SET5.length).toFixed(4)} dB, paper ${paper}`);
  }
  const out = join(tmp, 'x4.imdn');
  const r = spawnSync(process.execPath, [cli, 'convert', renamed('x4'), out, '--f16'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /IMDN x4, \d+ bytes \(float16\)/);
  const up = await createUpscaler({ model: out, workers: 1 });
  assert.deepEqual([up.info.arch, up.info.scale], ['IMDN', 4]);
  up.dispose();
});

// A local server for named models: serves `files` (name -> bytes) and counts requests.
async function modelServer(files) {
  const requests = [];
  const server = createServer((req, res) => {
    requests.push(req.url);
    const body = files[req.url.slice(1)];
    if (!body) return res.writeHead(404).end();
    res.writeHead(200, { 'Content-Length': body.length, 'Content-Type': 'application/octet-stream' }).end(body);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${server.address().port}/`, requests, close: () => new Promise((ok) => server.close(ok)) };
}

test('a named model downloads from modelBaseUrl with progress, is checked, cached, and served from the cache', { skip: skipOfficial }, async () => {
  const cache = mkdtempSync(join(tmp, 'cache-'));
  const saved = process.env.IMDN_CACHE_DIR;
  process.env.IMDN_CACHE_DIR = cache;
  const server = await modelServer({ 'model_RTC.pth': readFileSync(join(CHECKPOINTS, 'model_RTC.pth')) });
  try {
    const seen = [];
    const up = await createUpscaler({ model: 'rtc', modelBaseUrl: server.url, workers: 1, onDownloadProgress: (p) => seen.push(p) });
    assert.equal(up.info.arch, 'IMDN_RTC');
    up.dispose();
    assert.deepEqual(server.requests, ['/model_RTC.pth']);
    const size = statSync(join(CHECKPOINTS, 'model_RTC.pth')).size;
    assert.ok(seen.length >= 2 && seen.at(-1).loaded === size && seen.at(-1).total === size, JSON.stringify(seen.at(-1)));
    assert.deepEqual(readdirSync(join(cache, 'models')), [`${MODELS.rtc.sha256.slice(0, 16)}-model_RTC.pth`]);
    // Second use: from the cache, no request made.
    const again = await createUpscaler({ model: 'rtc', modelBaseUrl: server.url, workers: 1 });
    again.dispose();
    assert.equal(server.requests.length, 1, 'no second request');
    // A cache file that was tampered with is not trusted: downloaded again.
    writeFileSync(join(cache, 'models', `${MODELS.rtc.sha256.slice(0, 16)}-model_RTC.pth`), 'tampered');
    (await createUpscaler({ model: 'rtc', modelBaseUrl: server.url, workers: 1 })).dispose();
    assert.equal(server.requests.length, 2);
  } finally {
    await server.close();
    if (saved === undefined) delete process.env.IMDN_CACHE_DIR;
    else process.env.IMDN_CACHE_DIR = saved;
  }
});

test('a named model whose bytes are not the authors’ is refused, and not cached', async () => {
  const cache = mkdtempSync(join(tmp, 'cache-'));
  const saved = process.env.IMDN_CACHE_DIR;
  process.env.IMDN_CACHE_DIR = cache;
  // Some other (valid) model under the authors' file name.
  const server = await modelServer({ 'IMDN_x4.pth': readFileSync(randomModel('x4')) });
  try {
    await assert.rejects(
      createUpscaler({ model: 'x4', modelBaseUrl: server.url, workers: 1 }),
      new RegExp(`imdn: ${server.url}IMDN_x4.pth is not the authors' IMDN_x4.pth \\(sha256 [0-9a-f]{64}, expected ${MODELS.x4.sha256}\\); refusing it`),
    );
    assert.equal(existsSync(join(cache, 'models')) && readdirSync(join(cache, 'models')).length, false);
    await assert.rejects(createUpscaler({ model: 'rtc', modelBaseUrl: server.url, workers: 1 }), /cannot download .*model_RTC\.pth: HTTP 404/);
    // A download progress callback that throws, or is not a function, fails the call, not the process.
    await assert.rejects(
      createUpscaler({
        model: 'x4',
        modelBaseUrl: server.url,
        onDownloadProgress: () => {
          throw new Error('boom');
        },
      }),
      /imdn: onDownloadProgress threw: boom/,
    );
    await assert.rejects(createUpscaler({ model: 'x4', modelBaseUrl: server.url, onDownloadProgress: 5 }), /imdn: onDownloadProgress must be a function/);
  } finally {
    await server.close();
    if (saved === undefined) delete process.env.IMDN_CACHE_DIR;
    else process.env.IMDN_CACHE_DIR = saved;
  }
});

test('sha256 in plain JavaScript (insecure browser contexts) equals WebCrypto', async () => {
  const data = new Uint8Array(100003).map((_, i) => (i * 31 + (i >> 7)) & 255);
  const subtle = await sha256(data);
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
  Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true });
  try {
    for (const n of [0, 1, 55, 56, 63, 64, 65, 100003]) {
      const want = (await import('node:crypto')).createHash('sha256').update(data.subarray(0, n)).digest('hex');
      assert.equal(await sha256(data.subarray(0, n)), want, `${n} bytes`);
    }
  } finally {
    Object.defineProperty(globalThis, 'crypto', saved);
  }
  assert.equal(subtle, (await import('node:crypto')).createHash('sha256').update(data).digest('hex'));
});

// Hostile and broken checkpoints, written by hand (the C++ suite has the full set): each is refused
// with a message, through the API and the CLI, quickly and without running anything.
const evil = Buffer.concat([
  Buffer.from([0x80, 2]),
  Buffer.from('cos\nsystem\nX'),
  Buffer.from([12, 0, 0, 0]),
  Buffer.from('touch /tmp/x'),
  Buffer.from([0x85, 0x52, 0x2e]),
]);
const HOSTILE = [
  ['a pickle naming os.system', evil, /names os\.system, which a state dict never does; refusing it/],
  ['a truncated pickle', evil.subarray(0, 9), /corrupt|truncated/],
  ['a zip with no central directory', Buffer.from('PK\x03\x04 and nothing else of a zip archive'), /zip format\) is corrupt/],
  ['garbage', Buffer.from([0x80, 2, 0xff, 0xff, 0xff]), /pickle opcode 0xff is not one a state dict uses/],
];

for (const [what, bytes, message] of HOSTILE) {
  test(`a checkpoint with ${what} is refused with a message`, async () => {
    await assert.rejects(createUpscaler({ model: bytes, workers: 1 }), (e) => e.message.startsWith('imdn: model refused: ') && message.test(e.message));
    const file = join(tmp, 'hostile.pth');
    writeFileSync(file, bytes);
    const r = spawnSync(process.execPath, [join(ROOT, 'wasm', 'cli.js'), 'convert', file, join(tmp, 'out.imdn')], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, message);
  });
}

after(() => execFileSync('rm', ['-rf', tmp]));
