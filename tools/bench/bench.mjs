#!/usr/bin/env node
// Speed of our WebAssembly engine against onnxruntime-web and TensorFlow.js on the same model and
// inputs, in one process, interleaved run by run (the machine is shared and noisy: compare the
// ratio, not the ms).
//
//   node tools/bench/bench.mjs [--model x4] [--size 256] [--runs 5] [--workers 1,2] [--no-ort]
//                              [--no-tfjs] [--tile N[,N...]] [--pool] [--profile [--job]] [--startup]
//
// Prints median ms and GMAC/s for each contender and our speed-up over onnxruntime-web (wasm
// backend, one thread, ../shared/imdn/onnx/IMDN_<model>.onnx) and over TensorFlow.js (wasm
// backend, one thread: the same network built from its ops with the .imdn's weights,
// tfjs-imdn.mjs, its output checked against ours within 1e-4 first), each of ours with the package's
// defaults but for --workers (and --tile, a list, if given): N > 1 workers are then N threads of
// one instance; --pool adds N single-threaded workers (threads: false). --profile adds our
// per-operation times (medians of --runs passes after warm-up; with --job, of the job upscale()
// plans for one instance under the default memoryLimit, streamed blocks and all, and what the
// plan's own work between operations takes: copies, float16 conversions, sums); --startup the time from
// createUpscaler to the first result on a 64x64 image and the .wasm's size. Reports the machine's
// load average before and after.
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { compileWasm, instantiate, WasmEngine } from '../../wasm/engine.js';
import { DEFAULT_MEMORY_LIMIT } from '../../wasm/core.js';
import { createUpscaler } from '../../wasm/node.js';
import { MODELS, ROOT, SHARED_ONNX, STEMS, median, noiseRgb } from './common.mjs';

const { values: o } = parseArgs({
  options: {
    model: { type: 'string', default: 'x4' },
    size: { type: 'string', default: '256' },
    runs: { type: 'string', default: '5' },
    workers: { type: 'string', default: '1,2' },
    tile: { type: 'string' },
    'models-dir': { type: 'string', default: MODELS },
    'onnx-dir': { type: 'string', default: SHARED_ONNX },
    'no-ort': { type: 'boolean', default: false },
    'no-tfjs': { type: 'boolean', default: false },
    pool: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    job: { type: 'boolean', default: false },
    startup: { type: 'boolean', default: false },
  },
});
const size = Number(o.size);
const runs = Math.max(1, Number(o.runs));
const workerCounts = o.workers.split(',').map(Number);
// (the converted .imdn of a known name: KNOWN_MODELS names the authors' .pth files)
const modelPath = join(o['models-dir'], STEMS[o.model] ? `${STEMS[o.model]}.imdn` : o.model);
const onnxName = STEMS[o.model];
const onnxPath = onnxName && join(o['onnx-dir'], `${onnxName}.onnx`);

if (o.startup) {
  const { gzipSync } = await import('node:zlib');
  // Each in a fresh state as far as one process allows: the modules are compiled anew per call.
  for (const workers of [1, Math.max(2, ...workerCounts)]) {
    const t0 = performance.now();
    const up = await createUpscaler({ model: modelPath, workers });
    const t1 = performance.now();
    await up.upscale({ data: new Uint8Array(64 * 64 * 3).fill(128), width: 64, height: 64, channels: 3 });
    const t2 = performance.now();
    const how = up.threads > 1 ? `${up.threads} threads` : `${up.workers} worker${up.workers > 1 ? 's' : ''}`;
    up.dispose();
    console.log(
      `startup, ${how}: createUpscaler ${(t1 - t0).toFixed(0)} ms (compile, model, validation), first 64x64 result ${(t2 - t1).toFixed(0)} ms later (worker start, instance${up.threads > 1 ? ', its threads' : ''}, run): ${(t2 - t0).toFixed(0)} ms in all`,
    );
  }
  for (const name of ['imdn.wasm', 'imdn-mt.wasm']) {
    const path = join(ROOT, 'dist', name);
    if (!existsSync(path)) continue;
    const wasm = readFileSync(path);
    console.log(
      `dist/${name}: ${(wasm.length / 1024).toFixed(0)} KiB, ${(gzipSync(wasm, { level: 9 }).length / 1024).toFixed(0)} KiB gzipped (tools/bench/wasm-size.mjs: what it is made of)`,
    );
  }
}

// One deterministic RGB input, as bytes for us and as NCHW floats for onnxruntime.
const rgb = noiseRgb(size);
const nchw = new Float32Array(rgb.length);
for (let p = 0; p < size * size; p++) for (let c = 0; c < 3; c++) nchw[c * size * size + p] = rgb[p * 3 + c] / 255;

// Multiply-accumulates of the convolutions, per input pixel (../shared/imdn/README.md).
/** @type {Record<string, number>} */
const MACS_PER_PIXEL = { x2: 689088, x3: 697728, x4: 709824, rtc: 19899 };
const gmac = ((MACS_PER_PIXEL[String(o.model)] ?? NaN) * size * size) / 1e9;

const contenders = [];
// --tile: a list; without it, the package's default tile size (the default path).
const tileSizes = o.tile ? o.tile.split(',').map(Number) : [undefined];
const modes = o.pool ? [undefined, false] : [undefined]; // threads: the default, and the worker pool
for (const workers of workerCounts) {
  for (const tileSize of tileSizes) {
    for (const threads of modes) {
      if (threads === false && workers === 1) continue;
      const up = await createUpscaler({ model: modelPath, workers, tileSize, threads });
      const image = { data: rgb, width: size, height: size, channels: /** @type {3} */ (3) };
      const how = up.threads > 1 ? `${up.threads} threads` : `${workers} worker${workers > 1 ? 's' : ''}`;
      contenders.push({ name: `imdn-wasm ${how} (tile ${up.tileSize})`, run: () => up.upscale(image), close: () => up.dispose() });
    }
  }
}
if (!o['no-ort'] && onnxPath && existsSync(onnxPath)) {
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(readFileSync(onnxPath), { executionProviders: ['wasm'] });
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', nchw, [1, 3, size, size]) };
  contenders.push({ name: 'onnxruntime-web 1 thread', ort: true, run: () => session.run(feeds), close: () => session.release() });
}

if (!o['no-tfjs'] && ['x2', 'x3', 'x4'].includes(o.model)) {
  // TensorFlow.js's wasm backend, the same network built from its ops (tfjs-imdn.mjs), checked
  // against ours before it is timed.
  const { checkAgainst, tfjsImdn } = await import('./tfjs-imdn.mjs');
  const net = await tfjsImdn(readFileSync(modelPath), { threads: 1 });
  const rgbf = Float32Array.from(rgb, (v) => v / 255);
  const check = await createUpscaler({ model: modelPath, workers: 1 });
  const diff = await checkAgainst(
    net,
    rgb,
    size,
    async (/** @type {Uint8Array} */ data, /** @type {number} */ cs) => (await check.upscale({ data, width: cs, height: cs, channels: 3 }, { raw: true })).data,
  );
  check.dispose();
  console.log(`TensorFlow.js ${net.version}: the same network as ours (max |difference| ${diff.toExponential(1)})`);
  contenders.push({ name: 'TensorFlow.js wasm 1 thread', tfjs: true, run: async () => net.run(rgbf, size, size), close: () => net.dispose() });
}

const load0 = loadavg()[0];
const times = contenders.map(() => /** @type {number[]} */ ([]));
for (const c of contenders) await c.run(); // warm-up: workers, shapes, allocations
for (let r = 0; r < runs; r++) {
  for (const [i, c] of contenders.entries()) {
    const t = performance.now();
    await c.run();
    times[i].push(performance.now() - t);
  }
}
const ortIndex = contenders.findIndex((c) => c.ort);
const tfIndex = contenders.findIndex((c) => c.tfjs);
console.log(
  `${o.model} on ${size}x${size}, ${runs} runs after warm-up, ${gmac.toFixed(2)} GMAC per image; ${cpus()[0]?.model ?? 'CPU'}, ${cpus().length} cores; load average ${load0.toFixed(2)} -> ${loadavg()[0].toFixed(2)}`,
);
for (const [i, c] of contenders.entries()) {
  const ms = median(times[i]);
  const peer = (/** @type {number} */ k, /** @type {string} */ name) =>
    k >= 0 && i !== k && !c.ort && !c.tfjs ? `  ${(median(times[k]) / ms).toFixed(2)}x ${name}` : '';
  console.log(
    `${c.name.padEnd(34)} median ${ms.toFixed(0).padStart(6)} ms  ${(gmac / (ms / 1000)).toFixed(1).padStart(5)} GMAC/s${peer(ortIndex, 'onnxruntime-web')}${peer(tfIndex, 'TensorFlow.js')}`,
  );
}
for (const c of contenders) await c.close();

if (o.profile) {
  const { default: factory } = await import('../../dist/imdn.js');
  const module = await instantiate(factory, await compileWasm(new URL('../../dist/imdn.wasm', import.meta.url), async (p) => readFileSync(fileURLToPath(p))));
  const engine = new WasmEngine(module, readFileSync(modelPath));
  // Each profile() call times one pass after an untimed one; single passes swing by 10-20% on a
  // shared machine, so: one call discarded, then the median of --runs calls per operation.
  /** @type {import('../../wasm/engine.js').JobOptions} */
  const job = { executor: 'instance', memoryLimit: DEFAULT_MEMORY_LIMIT };
  const pass = () => (o.job ? engine.profileJob(size, size, job) : { ops: engine.profile(size, size), wall: 0 });
  pass();
  const passes = Array.from({ length: runs }, pass);
  const ops = passes.map((p) => new Map(p.ops));
  if (o.job) console.log(`\nthe job: ${JSON.stringify(engine.estimate(size, size, 3, job))}`);
  console.log(`\nper operation, one thread, median of ${runs} passes after warm-up:`);
  let total = 0;
  for (const kind of ops[0].keys()) {
    const ms = median(ops.map((p) => p.get(kind) ?? 0));
    total += ms;
    console.log(`  ${kind.padEnd(22)} ${ms.toFixed(1).padStart(8)} ms`);
  }
  console.log(`  ${'total'.padEnd(22)} ${total.toFixed(1).padStart(8)} ms`);
  if (o.job)
    console.log(
      `  ${'the job, wall'.padEnd(22)} ${median(passes.map((p) => p.wall))
        .toFixed(1)
        .padStart(8)} ms`,
    );
  engine.dispose();
}
