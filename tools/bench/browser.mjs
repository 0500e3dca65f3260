#!/usr/bin/env node
// Speed in headless Chromium: ours, onnxruntime-web and TensorFlow.js side by side in one
// cross-origin isolated page, interleaved run by run, on the same model and input (as bench.mjs
// does under Node). Ours: one worker, and 2 threads of one instance; the peers: their wasm
// backends on one thread (onnxruntime-web on ../shared/imdn/onnx/IMDN_<model>.onnx;
// TensorFlow.js on the same network built from its ops, tfjs-imdn.mjs, checked against ours
// within 1e-4 first). Prints the CPU model and the load.
//
//   node tools/bench/browser.mjs [--model x4] [--size 256] [--runs 3]
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { launchChromium } from '../chromium.mjs';
import { serve } from '../serve.mjs';
import { MODELS, ROOT, SHARED_ONNX, STEMS } from './common.mjs';

const { values: o } = parseArgs({
  options: {
    model: { type: 'string', default: 'x4' },
    size: { type: 'string', default: '256' },
    runs: { type: 'string', default: '3' },
  },
});
const stem = STEMS[o.model];
if (!stem || o.model === 'rtc') throw new Error('--model: x2, x3 or x4');
const onnx = join(SHARED_ONNX, `${stem}.onnx`);

// TensorFlow.js and our builder as one module for the page (its packages import bare names).
const out = join(ROOT, 'build', 'bench');
mkdirSync(out, { recursive: true });
const { build } = await import('esbuild');
await build({
  entryPoints: [join(ROOT, 'tools', 'bench', 'tfjs-imdn.mjs')],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  outfile: join(out, 'tfjs-imdn.js'),
  logLevel: 'error',
});

const server = await serve({ port: 0 });
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  // The ONNX export lives beside the checkout (../shared): served to the page from here.
  await page.route('**/onnx-model', (route) => route.fulfill({ body: readFileSync(onnx), contentType: 'application/octet-stream' }));
  await page.route('**/imdn-model', (route) => route.fulfill({ body: readFileSync(join(MODELS, `${stem}.imdn`)), contentType: 'application/octet-stream' }));
  await page.goto(`${server.url}web/`);
  const load0 = loadavg()[0];
  const r = await page.evaluate(
    async ({ model, size, runs, haveOnnx }) => {
      const median = (/** @type {number[]} */ a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
      const rgb = new Uint8Array(size * size * 3);
      let seed = 1;
      for (let i = 0; i < rgb.length; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        rgb[i] = seed >>> 24;
      }
      const rgbf = Float32Array.from(rgb, (v) => v / 255);
      const { createUpscaler } = await import(/** @type {string} */ ('/wasm/browser.js'));
      const contenders = [];
      for (const workers of [1, 2]) {
        const up = await createUpscaler({ model, workers });
        const how = up.threads > 1 ? `${up.threads} threads` : `${up.workers} worker`;
        contenders.push({ name: `imdn-wasm ${how}`, ours: true, run: () => up.upscale({ data: rgb, width: size, height: size, channels: 3 }), up });
      }
      // TensorFlow.js: the same network (checked against ours first).
      const { checkAgainst, tfjsImdn } = await import(/** @type {string} */ ('/build/bench/tfjs-imdn.js'));
      const net = await tfjsImdn(new Uint8Array(await (await fetch(model)).arrayBuffer()), {
        threads: 1,
        wasmPaths: '/node_modules/@tensorflow/tfjs-backend-wasm/dist/',
      });
      const up = contenders[0].up;
      const diff = await checkAgainst(
        net,
        rgb,
        size,
        async (/** @type {Uint8Array} */ data, /** @type {number} */ cs) =>
          (await up.upscale({ data, width: cs, height: cs, channels: 3 }, { raw: true })).data,
      );
      contenders.push({ name: 'TensorFlow.js wasm 1 thread', tfjs: true, run: async () => net.run(rgbf, size, size) });
      if (haveOnnx) {
        const ort = await import(/** @type {string} */ ('/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs'));
        ort.env.wasm.numThreads = 1;
        ort.env.wasm.wasmPaths = '/node_modules/onnxruntime-web/dist/';
        const session = await ort.InferenceSession.create(new Uint8Array(await (await fetch('/onnx-model')).arrayBuffer()), { executionProviders: ['wasm'] });
        const nchw = new Float32Array(rgb.length);
        for (let p = 0; p < size * size; p++) for (let c = 0; c < 3; c++) nchw[c * size * size + p] = rgb[p * 3 + c] / 255;
        const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', nchw, [1, 3, size, size]) };
        contenders.push({ name: `onnxruntime-web ${ort.env.versions?.web ?? ''} 1 thread`, ort: true, run: () => session.run(feeds) });
      }
      const times = contenders.map(() => /** @type {number[]} */ ([]));
      for (const c of contenders) await c.run(); // warm-up
      for (let k = 0; k < runs; k++) {
        const order = k % 2 ? [...contenders.keys()].reverse() : [...contenders.keys()];
        for (const i of order) {
          const t = performance.now();
          await contenders[i].run();
          times[i].push(performance.now() - t);
        }
      }
      for (const c of contenders) c.up?.dispose();
      net.dispose();
      return {
        diff,
        isolated: crossOriginIsolated,
        rows: contenders.map((c, i) => ({ name: c.name, ms: median(times[i]), ort: !!c.ort, tfjs: !!c.tfjs })),
      };
    },
    { model: `${server.url}imdn-model`, size: Number(o.size), runs: Number(o.runs), haveOnnx: existsSync(onnx) },
  );
  const gmacPerPixel = /** @type {Record<string, number>} */ ({ x2: 689088, x3: 697728, x4: 709824 })[String(o.model)] ?? 0;
  const gmac = (gmacPerPixel * Number(o.size) ** 2) / 1e9;
  console.log(
    `Chromium ${browser.version()}, ${r.isolated ? 'cross-origin isolated' : 'not isolated'}: ${o.model} on ${o.size}x${o.size}, ${o.runs} runs after warm-up (alternating order), ${gmac.toFixed(2)} GMAC per image; ${cpus()[0]?.model}, ${cpus().length} cores; load average ${load0.toFixed(2)} -> ${loadavg()[0].toFixed(2)}; TensorFlow.js within ${r.diff.toExponential(1)} of ours`,
  );
  const ort = r.rows.find((x) => x.ort);
  const tf = r.rows.find((x) => x.tfjs);
  for (const row of r.rows) {
    const vs =
      row.ort || row.tfjs
        ? ''
        : `${ort ? `  ${(ort.ms / row.ms).toFixed(2)}x onnxruntime-web` : ''}${tf ? `  ${(tf.ms / row.ms).toFixed(2)}x TensorFlow.js` : ''}`;
    console.log(`${row.name.padEnd(34)} median ${row.ms.toFixed(0).padStart(6)} ms  ${(gmac / (row.ms / 1000)).toFixed(1).padStart(5)} GMAC/s${vs}`);
  }
} finally {
  await browser.close();
  await server.close();
}
