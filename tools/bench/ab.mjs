#!/usr/bin/env node
// Two builds of the package side by side in one process, interleaved run by run: whether a change
// made a path faster or slower (the machine is shared and noisy: compare the ratio, not the ms).
//
//   git worktree add /tmp/before <commit> && (cd /tmp/before && tools/setup.sh --no-sample)
//   node tools/bench/ab.mjs --a /tmp/before --b . [--model x4] [--size 512] [--runs 3] [--workers 2]
//                           [--paths threads,pool] [--a-options '{"sharedMemory":false}']
//
// For each path (threads: one threaded instance; pool: --workers single-threaded workers), runs A
// and B in turn (A first, then B first) and prints the median ms of each and B's speed-up over A,
// with the CPU model and the load average.
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { MODELS, median, noiseRgb } from './common.mjs';

const { values: o } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: '.' },
    model: { type: 'string', default: 'x4' },
    size: { type: 'string', default: '512' },
    runs: { type: 'string', default: '3' },
    workers: { type: 'string', default: '2' },
    paths: { type: 'string', default: 'threads,pool' },
    'a-options': { type: 'string', default: '{}' },
    'models-dir': { type: 'string', default: MODELS },
  },
});
if (!o.a) throw new Error('ab.mjs: --a <checkout> is needed (see the header)');
const size = Number(o.size);
const workers = Number(o.workers);
const load = async (/** @type {string} */ dir) => import(pathToFileURL(join(resolve(dir), 'wasm', 'node.js')).href);
const [A, B] = await Promise.all([load(o.a), load(o.b)]);
/** @type {Record<string, string>} */
const FILES = { x2: 'IMDN_x2', x3: 'IMDN_x3', x4: 'IMDN_x4', rtc: 'IMDN_RTC', rte: 'IMDN_RTE', as: 'IMDN_AS' };
const modelName = String(o.model);
const modelPath = join(String(o['models-dir']), FILES[modelName] ? `${FILES[modelName]}.imdn` : modelName);
const image = { data: noiseRgb(size), width: size, height: size, channels: 3 };
const load0 = loadavg()[0];
console.log(`${cpus()[0].model}, ${cpus().length} cores; ${o.model} on ${size}x${size}, ${o.runs} runs after warm-up`);
const paths = [
  ['threads', true],
  ['pool', false],
].filter(([p]) => String(o.paths).split(',').includes(String(p)));
for (const [path, threads] of paths) {
  const ups = [
    await A.createUpscaler({ model: modelPath, workers, threads: Boolean(threads), ...JSON.parse(String(o['a-options'])) }),
    await B.createUpscaler({ model: modelPath, workers, threads: Boolean(threads) }),
  ];
  /** @type {number[][]} */
  const times = [[], []];
  for (const up of ups) await up.upscale(image); // warm-up
  for (let r = 0; r < Number(o.runs); r++) {
    // A first, then B first: the second of two back-to-back runs was 5% slower here even when
    // A and B were the same checkout (--a X --b X: 0.948x with A always first).
    const order = r % 2 === 0 ? [0, 1] : [1, 0];
    for (const i of order) {
      const up = ups[i];
      const t = performance.now();
      await up.upscale(image);
      times[i].push(performance.now() - t);
    }
  }
  for (const up of ups) up.dispose();
  const [ma, mb] = times.map(median);
  console.log(
    `${String(path).padEnd(8)} ${workers} ${threads ? 'threads' : 'workers'}: A ${ma.toFixed(0)} ms, B ${mb.toFixed(0)} ms, B is ${(ma / mb).toFixed(3)}x A`,
  );
}
console.log(`load average ${load0.toFixed(2)} -> ${loadavg()[0].toFixed(2)}`);
