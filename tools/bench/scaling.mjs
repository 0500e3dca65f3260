#!/usr/bin/env node
// How N cores compare with one, where the cores are not alike. On a shared virtual machine one
// vCPU can run the same single-threaded WebAssembly 1.0-1.5x slower than another, and which one a
// single worker lands on changes from run to run; "N cores against one" then depends on the luck
// of placement. This measures each core alone (taskset) and all N together, interleaved round by
// round, each in a process of its own:
//
//   node tools/bench/scaling.mjs [--model x4] [--size 256] [--rounds 5]
//
// and prints medians: one worker pinned to each core, N threads on all of them, the speed-up over
// the mean single core, and the efficiency against the ideal (the sum of the cores' own speeds).
import { execFileSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { createUpscaler } from '../../wasm/node.js';
import { MODELS, STEMS, median, noiseRgb } from './common.mjs';

const { values: o } = parseArgs({
  options: {
    model: { type: 'string', default: 'x4' },
    size: { type: 'string', default: '256' },
    rounds: { type: 'string', default: '5' },
    workers: { type: 'string' },
    child: { type: 'boolean', default: false },
  },
});
const size = Number(o.size);

if (o.child) {
  // One process, one configuration: a warm-up, then one timed run; prints the milliseconds.
  const rgb = noiseRgb(size);
  const up = await createUpscaler({ model: join(MODELS, STEMS[o.model] ? `${STEMS[o.model]}.imdn` : o.model), workers: Number(o.workers) });
  const image = { data: rgb, width: size, height: size, channels: /** @type {3} */ (3) };
  await up.upscale(image);
  const t = performance.now();
  await up.upscale(image);
  console.log(JSON.stringify({ ms: performance.now() - t, threads: up.threads, workers: up.workers }));
  up.dispose();
  process.exit(0);
}

const cores = availableParallelism();
const self = fileURLToPath(import.meta.url);
const run = (/** @type {string} */ cpuList, /** @type {number} */ workers) => {
  const out = execFileSync('taskset', ['-c', cpuList, process.execPath, self, '--child', '--model', o.model, '--size', o.size, '--workers', String(workers)], {
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop() ?? '');
};
const configs = [...Array(cores).keys()].map((c) => ({ name: `1 worker on core ${c}`, cpus: String(c), workers: 1 }));
const all = `0-${cores - 1}`;
configs.push({ name: `${cores} cores`, cpus: all, workers: cores });
const times = configs.map(() => /** @type {number[]} */ ([]));
let how = '';
const load0 = loadavg()[0];
for (let r = 0; r < Math.max(1, Number(o.rounds)); r++) {
  for (const [i, c] of configs.entries()) {
    const res = run(c.cpus, c.workers);
    times[i].push(res.ms);
    if (c.workers > 1) how = res.threads > 1 ? `1 worker, ${res.threads} threads` : `${res.workers} workers`;
  }
}
console.log(
  `${o.model} on ${size}x${size}, ${o.rounds} rounds (a process per run: warm-up + 1 timed); load average ${load0.toFixed(2)} -> ${loadavg()[0].toFixed(2)}`,
);
const single = configs.slice(0, cores).map((_c, i) => median(times[i]));
for (const [i, c] of configs.entries()) {
  const label = c.workers > 1 ? `${c.name} (${how})` : c.name;
  console.log(`  ${label.padEnd(34)} median ${median(times[i]).toFixed(0).padStart(6)} ms   [${times[i].map((t) => t.toFixed(0)).join(' ')}]`);
}
const multi = median(times[cores]);
const meanSingle = single.reduce((a, b) => a + b, 0) / cores;
const ideal = 1 / single.reduce((a, b) => a + 1 / b, 0);
console.log(`  speed-up over the mean single core: ${(meanSingle / multi).toFixed(2)}x (goal ${(0.9 * cores).toFixed(1)}x)`);
console.log(
  `  over the fastest core: ${(Math.min(...single) / multi).toFixed(2)}x; efficiency against the cores' summed speeds: ${((100 * ideal) / multi).toFixed(0)}%`,
);
