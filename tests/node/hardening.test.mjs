// The caller's mistakes and hostile files never escape: callbacks that throw or are not functions,
// bad signals and options, absurd worker counts and decode bombs all become rejected promises with
// imdn: messages, and the process (and the upscaler) live on. Random-weight models: no ../shared.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { createUpscaler, decodeImage, readImage } from '../../wasm/node.js';
import { NATIVE_BIN, ROOT, randomModel } from './helpers.mjs';

const REPRO = join(ROOT, 'tests', 'data', 'repro');
const image = { data: new Uint8Array(70 * 50 * 3).map((_, i) => (i * 29) % 256), width: 70, height: 50, channels: 3 };

// Every path that reports progress: the threaded instance, the pool of workers, whole-network tiles.
const PATHS = [
  ['threads', { workers: 2, threads: true }],
  ['pool', { workers: 2, threads: false }],
  ['one worker', { workers: 1, threads: false }],
];
const ups = {};
before(async () => {
  for (const [name, o] of PATHS) ups[name] = await createUpscaler({ model: randomModel('x2'), tileSize: 16, ...o });
});
after(() => {
  for (const u of Object.values(ups)) u.dispose();
});

for (const [name] of PATHS) {
  for (const exact of [true, false]) {
    test(`an onProgress that throws fails the call, not the process (${name}, exact: ${exact})`, async () => {
      const up = ups[name];
      const tileSize = exact ? 16 : 64;
      await assert.rejects(
        up.upscale(image, {
          exact,
          tileSize,
          onProgress: () => {
            throw new Error('caller bug');
          },
        }),
        /^Error: imdn: onProgress threw: caller bug$/,
      );
      await assert.rejects(up.upscale(image, { exact, tileSize, onProgress: 5 }), /imdn: onProgress must be a function, got number/);
      // The upscaler is still usable, and gives what it gave before.
      const a = await up.upscale(image, { exact, tileSize });
      const b = await up.upscale(image, { exact, tileSize, onProgress: () => {} });
      assert.deepEqual(a.data, b.data);
    });
  }
}

test('bad options, signals and worker counts reject with imdn: messages', async () => {
  const up = ups.pool;
  await assert.rejects(up.upscale(image, null), /imdn: upscale options must be an object, got null/);
  await assert.rejects(up.upscale(image, 'fast'), /imdn: upscale options must be an object, got string/);
  await assert.rejects(up.upscale(image, { signal: 'x' }), /imdn: signal must be an AbortSignal/);
  await assert.rejects(up.upscale(image, { signal: {} }), /imdn: signal must be an AbortSignal/);
  await assert.rejects(up.upscale(image, { maxInputPixels: -1 }), /imdn: maxInputPixels must be a positive integer, got -1/);
  await assert.rejects(createUpscaler(null), /imdn: createUpscaler needs an options object/);
  await assert.rejects(
    createUpscaler({ model: randomModel('x2'), workers: 1000 }),
    new RegExp(`imdn: workers: 1000 is more than this machine can use \\(${availableParallelism()} cores`),
  );
  await assert.rejects(createUpscaler({ model: randomModel('x2'), workers: 2.5 }), /workers must be a positive integer/);
  assert.equal((await up.upscale(image)).width, 140);
});

const BOMBS = readdirSync(REPRO).sort();

test('every decoder reproducer is refused with a message, through the API', async () => {
  for (const file of BOMBS) {
    const path = join(REPRO, file);
    await assert.rejects(readImage(path), /imdn: (image of \d+x\d+ pixels .* is over the limit|cannot decode image)/, file);
    await assert.rejects(ups.pool.upscale(path), /imdn: (image of \d+x\d+ pixels .* is over the limit|cannot decode image)/, file);
    // Raising the pixel limit does not let the bombs through: their files are too short.
    if (file.includes('decodes_')) await assert.rejects(readImage(path, { maxPixels: 2 ** 28 }), /which need at least \d+ bytes, but the file has \d+/, file);
  }
  await assert.rejects(decodeImage(new Uint8Array(8)), /cannot decode image/);
});

test('refusing the decode bombs keeps the process under 256 MiB resident, and the CLIs say why', () => {
  const script = `
    import { readImage } from ${JSON.stringify(join(ROOT, 'wasm', 'node.js'))};
    const before = process.resourceUsage().maxRSS;
    for (const f of ${JSON.stringify(BOMBS.map((f) => join(REPRO, f)))}) {
      for (const maxPixels of [undefined, 2 ** 28]) await readImage(f, { maxPixels }).then(() => { throw new Error('accepted ' + f); }, () => {});
    }
    console.log(JSON.stringify({ before, after: process.resourceUsage().maxRSS }));`;
  const { before: kb0, after: kb1 } = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script]).toString());
  assert.ok(kb1 < 256 * 1024, `peak resident ${(kb1 / 1024).toFixed(0)} MiB (${(kb0 / 1024).toFixed(0)} MiB before the bombs)`);
  for (const file of BOMBS) {
    const node = spawnSync(process.execPath, [join(ROOT, 'wasm', 'cli.js'), join(REPRO, file), '-o', '/tmp/imdn-bomb.png', '--model', randomModel('rtc')], {
      encoding: 'utf8',
    });
    assert.equal(node.status, 1, file);
    assert.match(node.stderr, /imdn-upscale: (image of \d+x\d+ pixels .* is over the limit|cannot decode image)/, file);
    const native = spawnSync(join(NATIVE_BIN, 'imdn-upscale'), ['--model', randomModel('rtc'), join(REPRO, file), '/tmp/imdn-bomb.png'], { encoding: 'utf8' });
    assert.equal(native.status, 1, file);
    assert.match(native.stderr, /(is over the limit|cannot decode image)/, file);
  }
});

test('without shared memory, an abort of a piece that cannot be told to stop frees its worker at once', async () => {
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'crossOriginIsolated');
  globalThis.crossOriginIsolated = false; // a page served without COOP/COEP: no stop flag
  const up = await createUpscaler({ model: randomModel('as'), workers: 1 });
  try {
    // IMDN_AS runs in one piece: nothing can reach into it without shared memory.
    const big = { data: new Uint8Array(384 * 384 * 3).map((_, i) => (i * 13) % 256), width: 384, height: 384, channels: 3 };
    const small = { data: new Uint8Array(24 * 24 * 3).fill(120), width: 24, height: 24, channels: 3 };
    await up.upscale(small); // the worker is up
    const [first] = up.pool.workers;
    const terminate = first.handle.terminate;
    let terminated = false;
    first.handle.terminate = () => {
      terminated = true;
      terminate();
    };
    const controller = new AbortController();
    const p = up.upscale(big, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(p, (e) => e.name === 'AbortError');
    assert.equal(terminated, true, 'the busy worker was terminated, not left to finish');
    assert.notEqual(up.pool.workers[0], first);
    // The next call gets a fresh worker and the same result as before.
    const fresh = await createUpscaler({ model: randomModel('as'), workers: 1 });
    const want = await fresh.upscale(small);
    fresh.dispose();
    assert.deepEqual((await up.upscale(small)).data, want.data);
  } finally {
    up.dispose();
    if (saved) Object.defineProperty(globalThis, 'crossOriginIsolated', saved);
    else delete globalThis.crossOriginIsolated;
  }
});
