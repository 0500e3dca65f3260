#!/usr/bin/env node
// Exact tiling, measured: wall time of tiled against whole-image inference on a 512x512 x4 input
// with 1 and 2 workers (2: threads of one instance where memory can be shared; interleaved,
// medians). Memory: tools/bench/memory.mjs.
//
//   node tools/bench/tiling.mjs [--runs 3]
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { createUpscaler } from '../../wasm/node.js';
import { MODELS, median } from './common.mjs';

const { values: o } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    model: { type: 'string', default: join(MODELS, 'IMDN_x4.imdn') },
  },
});

/** @param {number} side */
function image(side) {
  const data = new Uint8Array(side * side * 3);
  let seed = 7;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const i = (y * side + x) * 3;
      data[i] = (x * 255) / side;
      data[i + 1] = (y * 255) / side;
      data[i + 2] = seed >>> 24;
    }
  }
  return { data, width: side, height: side, channels: 3 };
}

{
  const img = image(512);
  const configs = [];
  for (const workers of [1, 2]) {
    configs.push({ name: `whole image, ${workers} worker(s)`, workers, opts: { tileSize: 4096 } });
    configs.push({ name: `exact tiles 128, ${workers} worker(s)`, workers, opts: { tileSize: 128 } });
    configs.push({ name: `exact tiles 64, ${workers} worker(s)`, workers, opts: { tileSize: 64 } });
    configs.push({ name: `approximate tiles 128, ${workers} worker(s)`, workers, opts: { tileSize: 128, exact: false } });
  }
  const ups = new Map();
  for (const w of [1, 2]) ups.set(w, await createUpscaler({ model: o.model, workers: w }));
  const times = configs.map(() => /** @type {number[]} */ ([]));
  for (const c of configs) await ups.get(c.workers).upscale(img, c.opts); // warm-up
  const load0 = loadavg()[0];
  for (let r = 0; r < Math.max(1, Number(o.runs)); r++) {
    for (const [i, c] of configs.entries()) {
      const t = performance.now();
      await ups.get(c.workers).upscale(img, c.opts);
      times[i].push(performance.now() - t);
    }
  }
  console.log(`x4, 512x512, ${o.runs} runs after warm-up; load average ${load0.toFixed(2)} -> ${loadavg()[0].toFixed(2)}`);
  for (const [i, c] of configs.entries()) {
    const whole = median(times[configs.findIndex((d) => d.workers === c.workers)]);
    console.log(`  ${c.name.padEnd(36)} ${median(times[i]).toFixed(0).padStart(6)} ms  ${(median(times[i]) / whole).toFixed(2)}x whole`);
  }
  for (const u of ups.values()) u.dispose();
}
