// The package's JavaScript API under Node, over the built WebAssembly module and worker threads.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { createUpscaler, decodeImage, encodePng, readImage } from '../../wasm/node.js';
import { IMDN, NATIVE_BIN, SET5, model, psnrY, randomModel, skipWithoutData } from './helpers.mjs';

// Tests that need only *some* model and image use the official ones where ../shared has them, else
// random-weight models of the same shapes and images of noise: they run on any clone. Only the
// paper numbers need the authors' weights and Set5.
const RANDOM = { 'IMDN_x2.imdn': 'x2', 'IMDN_x4.imdn': 'x4', 'IMDN_RTC.imdn': 'rtc', 'IMDN_RTE.imdn': 'rte', 'IMDN_AS.imdn': 'as' };
const someModel = (file) => (skipWithoutData ? randomModel(RANDOM[file]) : model(file));
const noiseDir = mkdtempSync(join(tmpdir(), 'imdn-noise-'));
async function lr(scale, name) {
  const path = join(IMDN, 'datasets', 'Set5_LR', `x${scale}`, `${name}x${scale}.bmp`);
  if (!skipWithoutData) return path;
  const file = join(noiseDir, `${name}x${scale}.png`);
  const w = Math.round(256 / scale) + name.length;
  const h = Math.round(200 / scale) + 3;
  let seed = name.length * 7 + scale;
  const data = new Uint8Array(w * h * 3).map((_, i) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    // Smooth structure plus noise, so the network sees edges as in a photo.
    return ((Math.floor(i / 3) % w) * 3 + Math.floor(i / 3 / w) * 2 + (seed >>> 28)) & 255;
  });
  writeFileSync(file, await encodePng({ data, width: w, height: h, channels: 3 }));
  return file;
}

const PAPER = { 2: 37.996, 3: 34.36, 4: 32.21 };

for (const workers of [1, 2, 4]) {
  test(`Set5 x2/x3/x4 reproduce the paper with ${workers} worker(s)`, { skip: skipWithoutData }, async () => {
    for (const s of [2, 3, 4]) {
      const up = await createUpscaler({ model: model(`IMDN_x${s}.imdn`), workers });
      try {
        let sum = 0;
        for (const name of SET5) {
          const lr = await readImage(join(IMDN, 'datasets', 'Set5_LR', `x${s}`, `${name}x${s}.bmp`));
          const hr = await readImage(join(IMDN, 'datasets', 'Set5_HR', `${name}.bmp`));
          const out = await up.upscale(lr);
          assert.equal(out.width, lr.width * s);
          assert.equal(out.height, lr.height * s);
          sum += psnrY(out, hr, s);
        }
        const mean = sum / SET5.length;
        assert.ok(Math.abs(mean - PAPER[s]) <= 0.005, `x${s}: mean Y-PSNR ${mean.toFixed(4)} vs ${PAPER[s]}`);
      } finally {
        up.dispose();
      }
    }
  });
}

test('raw output matches the native engine within 1e-4', { skip: !existsSync(join(NATIVE_BIN, 'imdn-upscale')) && 'no native build' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'imdn-'));
  for (const [m, s] of [
    ['IMDN_x4.imdn', 4],
    ['IMDN_RTC.imdn', 2],
  ]) {
    const input = await lr(s, 'butterfly');
    execFileSync(join(NATIVE_BIN, 'imdn-upscale'), [
      '--quiet',
      '--threads',
      '1',
      '--model',
      someModel(m),
      input,
      join(dir, 'n.png'),
      '--raw',
      join(dir, 'n.f32'),
    ]);
    const b = readFileSync(join(dir, 'n.f32'));
    const native = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    for (const workers of [1, 2]) {
      const up = await createUpscaler({ model: someModel(m), workers });
      const out = await up.upscale(input, { raw: true, tileSize: 4096 });
      up.dispose();
      assert.equal(out.data.length, native.length);
      let max = 0;
      for (let i = 0; i < native.length; i++) max = Math.max(max, Math.abs(out.data[i] - native[i]));
      assert.ok(max <= 1e-4, `${m} (${workers} workers): max |wasm - native| = ${max}`);
    }
  }
});

async function wholeImage(file, name) {
  const up = await createUpscaler({ model: someModel(name), workers: 1 });
  const r = await up.upscale(file, { raw: true, exact: false, tileSize: 4096 });
  up.dispose();
  return r.data;
}

function maxDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test("exact tiles of IMDN x4 give the whole image's bytes, on 1, 2 and 4 workers or threads and any tile size", async () => {
  for (const name of ['butterfly', 'woman']) {
    const input = await lr(4, name);
    const whole = await wholeImage(input, 'IMDN_x4.imdn');
    // [workers, tileSize, threads]: threads false = the pool of single-threaded workers running
    // the units of a job planned in this thread (or, with one worker, the whole job in it); true =
    // one threaded instance.
    const configs = [
      [1, 16, false],
      [2, 32, false],
      [4, 48, false],
      [2, 4096, false],
      [2, 16, false],
      [4, 128, false],
      [2, 16, true],
      [4, 48, true],
      [2, 4096, true],
      [2, 128, true],
    ];
    for (const [workers, tileSize, threads] of configs) {
      const up = await createUpscaler({ model: someModel('IMDN_x4.imdn'), workers, tileSize, threads });
      assert.equal(up.threads, threads ? workers : 1);
      let last;
      const out = await up.upscale(input, { raw: true, onProgress: (p) => (last = p) });
      up.dispose();
      assert.equal(last.done, last.total);
      const d = maxDiff(out.data, whole);
      assert.equal(d, 0, `${name}, ${workers} workers, tile ${tileSize}, threads ${threads}: max |tiled - whole| = ${d}`);
    }
  }
});

test('approximate tiles differ where attention sees other statistics, exact ones do not', async () => {
  const input = await lr(4, 'bird');
  const whole = await wholeImage(input, 'IMDN_x4.imdn');
  const up = await createUpscaler({ model: someModel('IMDN_x4.imdn'), workers: 2, tileSize: 32 });
  const fast = await up.upscale(input, { raw: true, exact: false });
  const exact = await up.upscale(input, { raw: true });
  up.dispose();
  assert.ok(maxDiff(fast.data, whole) > 1e-3, 'whole-network tiles should not match with attention');
  assert.ok(maxDiff(exact.data, whole) <= 1e-5);
});

test('tiles of IMDN_RTC and IMDN_RTE equal the whole image in both modes, with 1, 2 and 4 workers', async () => {
  const input = await lr(2, 'head');
  for (const name of ['IMDN_RTC.imdn', 'IMDN_RTE.imdn']) {
    const whole = await wholeImage(input, name);
    for (const workers of [1, 2, 4]) {
      for (const exact of [true, false]) {
        const up = await createUpscaler({ model: someModel(name), workers, tileSize: 32, exact });
        let last;
        const out = await up.upscale(input, { raw: true, onProgress: (p) => (last = p) });
        up.dispose();
        assert.equal(last.done, last.total);
        const d = maxDiff(out.data, whole);
        assert.ok(d <= 1e-5, `${name} ${workers} workers exact=${exact}: max |tiled - whole| = ${d}`);
      }
    }
  }
});

// Every architecture (random weights: this needs only some model of each shape), every path:
// the same bytes as the whole image, RGB, grey and translucent alike.
test('every model gives the same bytes on the pool, the threaded instance and one worker, at tile sizes 16 to 128', async () => {
  const w = 52;
  const h = 44;
  const rgba = new Uint8Array(w * h * 4).map((_, i) => (i % 4 === 3 ? (i * 7) % 256 : (i * 37) % 256));
  for (const name of ['x2', 'x3', 'x4', 'as', 'rtc', 'rte']) {
    const model = randomModel(name);
    const ref = await createUpscaler({ model, workers: 1, tileSize: 4096 });
    const want = await ref.upscale({ data: rgba, width: w, height: h, channels: 4 });
    const wantRaw = await ref.upscale({ data: rgba, width: w, height: h, channels: 4 }, { raw: true });
    ref.dispose();
    for (const [workers, threads, tileSize] of [
      [2, false, 16],
      [4, false, 128],
      [2, true, 16],
      [2, true, 64],
      [1, false, 32],
    ]) {
      const up = await createUpscaler({ model, workers, threads, tileSize });
      const got = await up.upscale({ data: rgba, width: w, height: h, channels: 4 });
      const raw = await up.upscale({ data: rgba, width: w, height: h, channels: 4 }, { raw: true });
      up.dispose();
      const where = `${name}, ${workers} workers, threads ${threads}, tile ${tileSize}`;
      assert.deepEqual([got.width, got.height], [want.width, want.height], where);
      assert.ok(Buffer.from(got.data.buffer).equals(Buffer.from(want.data.buffer)), `${where}: RGBA bytes differ`);
      assert.equal(maxDiff(raw.data, wantRaw.data), 0, `${where}: raw output differs`);
    }
  }
});

for (const threads of [false, true])
  test(`progress reaches the total and abort rejects quickly, leaving the upscaler usable (threads ${threads})`, async () => {
    const up = await createUpscaler({ model: someModel('IMDN_x4.imdn'), workers: 2, tileSize: 32, threads });
    try {
      const image = { data: new Uint8Array(128 * 128 * 3).map((_, i) => (i * 31) % 256), width: 128, height: 128 };
      const controller = new AbortController();
      let done = 0;
      const started = performance.now();
      let tileMs = 0;
      const p = up.upscale(image, {
        signal: controller.signal,
        onProgress: (pr) => {
          done = pr.done;
          if (pr.done === 1) {
            tileMs = performance.now() - started;
            controller.abort();
          }
        },
      });
      await assert.rejects(p, (e) => e.name === 'AbortError');
      // The next call runs to the end.
      let last;
      const out = await up.upscale(image, { onProgress: (pr) => (last = pr) });
      assert.equal(out.width, 512);
      assert.equal(last.done, last.total);
      assert.ok(done < last.total, `aborted after ${done} of ${last.total} units`);
      assert.ok(tileMs > 0);
    } finally {
      up.dispose();
    }
  });

test('a threaded instance stops at the next unit of work when asked', async () => {
  const { compileWasm, instantiate, WasmEngine } = await import('../../wasm/engine.js');
  const { installWorkerShim } = await import('../../wasm/node-threads.js');
  const { default: factory } = await import('../../dist/imdn-mt.js');
  const { fileURLToPath } = await import('node:url');
  installWorkerShim();
  const dist = new URL('../../dist/', import.meta.url);
  const options = { imdnThreads: 2, pthreadWorker: new URL('imdn-mt.worker.js', dist), mainScriptUrlOrBlob: new URL('imdn-mt.js', dist).href };
  const module = await instantiate(factory, await compileWasm(new URL('imdn-mt.wasm', dist), (u) => readFileSync(fileURLToPath(u))), options);
  const engine = new WasmEngine(module, readFileSync(someModel('IMDN_RTC.imdn')), 2);
  try {
    const pixels = new Uint8Array(64 * 48 * 3).map((_, i) => (i * 13) % 256);
    let calls = 0;
    let total = 0;
    const full = engine.upscale(pixels, 64, 48, 3, {
      tileSize: 16,
      onProgress: (_done, t) => {
        total = t;
        calls++;
        return false;
      },
    });
    assert.equal(calls, total);
    assert.ok(total > 4);
    calls = 0;
    assert.throws(
      () => engine.upscale(pixels, 64, 48, 3, { tile: 16, onProgress: () => ++calls === 2 }),
      (e) => e.cancelled === true && /cancelled/.test(e.message),
    );
    assert.equal(calls, 2, 'no unit of work after the one that asked to stop');
    const again = engine.upscale(pixels, 64, 48, 3, { tile: 16 });
    assert.deepEqual(again.data, full.data);
  } finally {
    engine.dispose();
    module.PThread.terminateAllThreads();
  }
});

test('threads: refused clearly without shareable memory, and the default falls back to workers', async () => {
  await assert.rejects(createUpscaler({ model: someModel('IMDN_RTC.imdn'), threads: 'yes' }), /threads must be true or false/);
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'crossOriginIsolated');
  globalThis.crossOriginIsolated = false; // as on a page served without COOP/COEP
  try {
    await assert.rejects(createUpscaler({ model: someModel('IMDN_RTC.imdn'), workers: 2, threads: true }), /threads need SharedArrayBuffer.*COOP\/COEP/);
    const up = await createUpscaler({ model: someModel('IMDN_RTC.imdn'), workers: 2 });
    assert.equal(up.threads, 1);
    assert.equal(up.workers, 2);
    const out = await up.upscale({ data: new Uint8Array(40 * 40 * 3).fill(90), width: 40, height: 40 });
    assert.equal(out.width, 80);
    up.dispose();
  } finally {
    if (saved) Object.defineProperty(globalThis, 'crossOriginIsolated', saved);
    else delete globalThis.crossOriginIsolated;
  }
  const up = await createUpscaler({ model: someModel('IMDN_RTC.imdn'), workers: 2 });
  assert.equal(up.threads, 2, 'Node shares memory: threads by default');
  up.dispose();
});

test('an already aborted signal rejects at once', async () => {
  const up = await createUpscaler({ model: someModel('IMDN_RTC.imdn'), workers: 1 });
  const c = new AbortController();
  c.abort();
  await assert.rejects(up.upscale({ data: new Uint8Array(12), width: 2, height: 2 }, { signal: c.signal }), { name: 'AbortError' });
  up.dispose();
});

test('several calls at once are served fairly and all finish', async () => {
  // The pool of single-threaded workers, fed unit by unit (one instance that tiles inside, below,
  // serves calls one after another instead).
  const up = await createUpscaler({ model: someModel('IMDN_RTC.imdn'), workers: 2, threads: false, tileSize: 16 });
  try {
    const order = [];
    const image = (seed) => ({ data: new Uint8Array(64 * 64 * 3).map((_, i) => (i * seed) % 256), width: 64, height: 64 });
    const calls = [1, 2, 3].map((k) => up.upscale(image(k + 6), { onProgress: () => order.push(k) }));
    const results = await Promise.all(calls);
    for (const r of results) assert.equal(r.width, 128);
    // Round robin: the first tenth of the finished units belong to all three calls, not to the
    // first alone (the third call's job may be planned a few units after the others start).
    assert.deepEqual(new Set(order.slice(0, Math.ceil(order.length / 10))), new Set([1, 2, 3]), order.join(','));
  } finally {
    up.dispose();
  }
});

test('one threaded instance serves several calls at once one after another, all correct', async () => {
  const up = await createUpscaler({ model: someModel('IMDN_RTC.imdn'), workers: 2, tileSize: 16 });
  const single = await createUpscaler({ model: someModel('IMDN_RTC.imdn'), workers: 1, threads: false });
  try {
    assert.equal(up.threads, 2);
    const order = [];
    const image = (seed) => ({ data: new Uint8Array(64 * 48 * 3).map((_, i) => (i * seed) % 256), width: 64, height: 48 });
    const results = await Promise.all([1, 2, 3].map((k) => up.upscale(image(k + 6), { raw: true, onProgress: () => order.push(k) })));
    assert.deepEqual(order, [...order].sort(), 'calls run in the order they came');
    for (const [i, r] of results.entries()) {
      const ref = await single.upscale(image(i + 7), { raw: true });
      assert.ok(maxDiff(r.data, ref.data) <= 1e-5);
    }
  } finally {
    up.dispose();
    single.dispose();
  }
});

// A real crash (an uncaught error in the worker) on each path: one worker, threads, the pool.
for (const [name, options] of [
  ['single-threaded', { workers: 1 }],
  ['threaded', { workers: 2 }],
  ['pool', { workers: 2, threads: false }],
])
  test(`a crashed worker fails its call with a clear error and is replaced (${name})`, async () => {
    const { platform } = await import('../../wasm/node-platform.js');
    const { createUpscalerWith } = await import('../../wasm/core.js');
    const MARKER = join(tmpdir(), 'imdn-wasm-test-crash'); // as crashing-worker.mjs names it
    const crashing = new URL('./crashing-worker.mjs', import.meta.url);
    const up = await createUpscalerWith(
      { ...platform, spawnWorker: (_url, threaded) => platform.spawnWorker(crashing, threaded) },
      { model: someModel('IMDN_RTC.imdn'), ...options },
    );
    try {
      const image = { data: new Uint8Array(48 * 48 * 3).fill(100), width: 48, height: 48 };
      writeFileSync(MARKER, '');
      await assert.rejects(up.upscale(image), /worker crashed \(test crash\)/);
      const out = await up.upscale(image);
      assert.equal(out.width, 96);
    } finally {
      rmSync(MARKER, { force: true });
      up.dispose();
    }
  });

test('bad inputs reject with clear errors', async () => {
  await assert.rejects(createUpscaler({ model: new Uint8Array(100) }), /model refused: not a model: neither an \.imdn file/);
  await assert.rejects(createUpscaler({ model: readFileSync(someModel('IMDN_x4.imdn')).subarray(0, 5000) }), /model refused: .*truncated/);
  await assert.rejects(createUpscaler({ model: 'x4', modelBaseUrl: '/nonexistent' }), /cannot read .*IMDN_x4.pth: no such file/);
  await assert.rejects(createUpscaler({}), /needs \{ model \}/);
  const up = await createUpscaler({ model: someModel('IMDN_RTC.imdn'), workers: 1 });
  try {
    const png = await encodePng({ data: new Uint8Array(8 * 8 * 3).fill(7), width: 8, height: 8 });
    await assert.rejects(up.upscale(png.subarray(0, png.length - 20)), /cannot decode image/);
    await assert.rejects(up.upscale(Buffer.from('not an image')), /cannot decode image/);
    await assert.rejects(up.upscale({ data: new Uint8Array(0), width: 0, height: 0 }), /invalid size 0x0/);
    await assert.rejects(up.upscale({ data: new Uint8Array(30), width: 100000, height: 100000 }), /too large/);
    await assert.rejects(up.upscale({ data: new Uint8Array(10), width: 2, height: 2 }), /does not fit 2x2/);
    await assert.rejects(up.upscale({ data: new Uint8Array(12), width: 2, height: 2 }, { targetWidth: 8, targetHeight: 8 }), /needs the IMDN_AS model/);
    // Still usable after all that.
    assert.equal((await up.upscale({ data: new Uint8Array(12), width: 2, height: 2 })).width, 4);
  } finally {
    up.dispose();
  }
});

test('alpha is kept and grey stays grey', async () => {
  const up = await createUpscaler({ model: someModel('IMDN_RTC.imdn'), workers: 2, tileSize: 16 });
  try {
    const w = 40;
    const h = 30;
    const rgba = new Uint8Array(w * h * 4);
    for (let p = 0; p < w * h; p++) {
      rgba.set([200, (p * 7) % 256, 50, p % w < w / 2 ? 0 : 255], p * 4);
    }
    const out = await up.upscale({ data: rgba, width: w, height: h });
    // Alpha goes through the network as a grey image of its own: the same as upscaling it alone.
    const plane = await up.upscale({ data: rgba.filter((_, i) => i % 4 === 3), width: w, height: h, channels: 1 });
    for (let p = 0; p < out.width * out.height; p++) assert.equal(out.data[p * 4 + 3], plane.data[p * 4], `alpha at ${p}`);
    if (!skipWithoutData) {
      // With the authors' weights: left half transparent, right half opaque, away from the edge.
      assert.ok(out.data[(10 * 80 + 5) * 4 + 3] <= 2, `alpha ${out.data[(10 * 80 + 5) * 4 + 3]}`);
      assert.ok(out.data[(10 * 80 + 75) * 4 + 3] >= 253, `alpha ${out.data[(10 * 80 + 75) * 4 + 3]}`);
    }
    const grey = await up.upscale({ data: new Uint8Array(w * h).map((_, i) => i % 256), width: w, height: h, channels: 1 });
    for (let p = 0; p < grey.width * grey.height; p++) {
      const [r, g, b, a] = grey.data.subarray(p * 4, p * 4 + 4);
      assert.ok(r === g && g === b && a === 255);
    }
  } finally {
    up.dispose();
  }
});

test('decode and encode round trip through the WebAssembly stb', async () => {
  const img = { data: new Uint8Array(5 * 3 * 4).map((_, i) => (i * 37) % 256), width: 5, height: 3, channels: 4 };
  const back = await decodeImage(await encodePng(img));
  assert.deepEqual([back.width, back.height, back.channels], [5, 3, 4]);
  assert.deepEqual(Array.from(back.data), Array.from(img.data));
});
