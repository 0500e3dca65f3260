// The package as users import it: by name from a plain ES module and from CommonJS, and its CLI.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { createUpscaler, encodePng, readImage } from '../../wasm/node.js';
import { IMDN, ROOT, psnrY, randomModel, skipWithoutData } from './helpers.mjs';

const env = { ...process.env, IMDN_MODELS_DIR: '', RTC: randomModel('rtc') };

test('imports by name from a plain ES module', () => {
  const script = `
    import { createUpscaler, KNOWN_MODELS } from 'imdn-wasm';
    const up = await createUpscaler({ model: process.env.RTC, workers: 1 });
    const r = await up.upscale({ data: new Uint8Array(4 * 4 * 3).fill(128), width: 4, height: 4 });
    up.dispose();
    console.log(JSON.stringify({ w: r.width, names: Object.keys(KNOWN_MODELS).length }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, env }).toString();
  assert.deepEqual(JSON.parse(out), { w: 8, names: 6 });
});

test('requires from CommonJS', () => {
  const script = `
    const imdn = require('imdn-wasm');
    imdn.createUpscaler({ model: process.env.RTC, workers: 1 })
      .then((up) => up.upscale({ data: new Uint8Array(6 * 2 * 3).fill(9), width: 6, height: 2 }).then((r) => { up.dispose(); console.log(r.width + 'x' + r.height); }));`;
  const out = execFileSync(process.execPath, ['-e', script], { cwd: ROOT, env }).toString().trim();
  assert.equal(out, '12x4');
});

test('the Node CLI upscales a file to a PNG with the paper quality', { skip: skipWithoutData }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'imdn-cli-'));
  const output = join(dir, 'butterfly.png');
  execFileSync(
    process.execPath,
    [
      join(ROOT, 'wasm', 'cli.js'),
      join(IMDN, 'datasets', 'Set5_LR', 'x4', 'butterflyx4.bmp'),
      '-o',
      output,
      '--model',
      'x4',
      '--models-dir',
      join(IMDN, 'checkpoints'),
      '--workers',
      '2',
      '-q',
    ],
    { env },
  );
  const out = await readImage(output);
  const hr = await readImage(join(IMDN, 'datasets', 'Set5_HR', 'butterfly.bmp'));
  assert.deepEqual([out.width, out.height], [256, 256]);
  // The official code's butterfly x4 (reference PNG) scores the same.
  const ref = await readImage(join(IMDN, 'reference', 'IMDN_x4_butterfly_SR.png'));
  assert.ok(Math.abs(psnrY(out, hr, 4) - psnrY(ref, hr, 4)) < 0.001);
});

// The CLI's own path on any clone (some model, some image): the file it writes holds the bytes the
// API gives for the same input.
test("the Node CLI upscales a file to a PNG with the API's bytes", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'imdn-cli-'));
  const input = join(dir, 'in.png');
  const image = { data: new Uint8Array(40 * 30 * 3).map((_, i) => (i * 41) % 256), width: 40, height: 30, channels: 3 };
  writeFileSync(input, await encodePng(image));
  const output = join(dir, 'out.png');
  const model = randomModel('x2');
  execFileSync(process.execPath, [join(ROOT, 'wasm', 'cli.js'), input, '-o', output, '--model', model, '--workers', '2', '-q'], { env });
  const out = await readImage(output);
  const up = await createUpscaler({ model, workers: 1 });
  try {
    const ref = await up.upscale(image);
    assert.deepEqual([out.width, out.height], [80, 60]);
    for (let p = 0; p < 80 * 60; p++) {
      for (let c = 0; c < 3; c++) assert.equal(out.data[p * out.channels + c], ref.data[p * 4 + c], `pixel ${p}`);
    }
  } finally {
    up.dispose();
  }
});

test('the Node CLI explains its errors', () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'wasm', 'cli.js'), 'missing.png', '-o', '/tmp/x.png', '--model', 'nothing.imdn'], { env });
  assert.equal(r.status, 1);
  assert.match(r.stderr.toString(), /no model file nothing.imdn/);
  const u = spawnSync(process.execPath, [join(ROOT, 'wasm', 'cli.js')], { env });
  assert.equal(u.status, 2);
  assert.match(u.stderr.toString(), /usage: imdn-upscale/);
  assert.ok(readFileSync(join(ROOT, 'wasm', 'cli.js'), 'utf8').startsWith('#!/usr/bin/env node'));
});

test('CommonJS gives hasWasmSimd(), KNOWN_MODELS and modelCacheDir() as plain values, equal to the ES ones', async () => {
  const script = `
    const imdn = require('imdn-wasm');
    console.log(JSON.stringify({ simd: imdn.hasWasmSimd(), names: imdn.KNOWN_MODELS, frozen: Object.isFrozen(imdn.KNOWN_MODELS), cache: imdn.modelCacheDir() }));`;
  const cjs = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: ROOT, env }).toString());
  const esm = await import('../../wasm/node.js');
  assert.deepEqual(cjs, { simd: esm.hasWasmSimd(), names: { ...esm.KNOWN_MODELS }, frozen: true, cache: esm.modelCacheDir() });
});

test('the Node CLI says in words what is wrong with its input, output and model', () => {
  const dir = mkdtempSync(join(tmpdir(), 'imdn-cli-'));
  const model = join(dir, 'm.imdn');
  writeFileSync(model, 'not a model');
  const image = join(dir, 'in.png');
  writeFileSync(image, 'not an image');
  const cases = [
    [[dir, '-o', join(dir, 'o.png'), '--model', model], 1, /the input file .* is a folder; give a file/],
    [[join(dir, 'nope.png'), '-o', join(dir, 'o.png'), '--model', model], 1, /no input file .*nope\.png/],
    [[image, '-o', join(dir, 'missing', 'o.png'), '--model', model], 1, /the output folder .*missing does not exist/],
    [[image, '-o', dir, '--model', model], 1, /the output .* is a folder/],
    [[image, '-o', join(dir, 'o.png'), '--model', 'x4', '--models-dir', dir], 1, /cannot read .*IMDN_x4\.pth: no such file or folder/],
    [[image, '-o', join(dir, 'o.png'), '--model', model], 1, /imdn-upscale: model refused: /],
    [[image, '-o', join(dir, 'o.png'), '--model', model, '--workers', 'two'], 2, /--workers takes a positive integer, got two/],
  ];
  for (const [args, status, message] of cases) {
    const r = spawnSync(process.execPath, [join(ROOT, 'wasm', 'cli.js'), ...args], { env: { ...process.env, IMDN_MODELS_DIR: '' } });
    const err = r.stderr.toString();
    assert.equal(r.status, status, `${args.join(' ')}: ${err}`);
    assert.match(err, message);
    assert.doesNotMatch(err, /EISDIR|ENOENT|at .*\.js:\d+/, 'no raw error codes or stacks');
  }
});

test("the host's own Node flags do not reach the package's workers", () => {
  // --expose-gc is refused in worker_threads (ERR_WORKER_INVALID_EXEC_ARGV) if passed on.
  const script = `
    import { createUpscaler } from 'imdn-wasm';
    for (const threads of [true, false]) {
      const up = await createUpscaler({ model: process.env.RTC, workers: 2, threads });
      const r = await up.upscale({ data: new Uint8Array(40 * 30 * 3).fill(77), width: 40, height: 30 });
      up.dispose();
      console.log(threads, r.width, typeof gc);
    }`;
  const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { cwd: ROOT, env }).toString().trim();
  assert.equal(out, 'true 80 function\nfalse 80 function');
});
