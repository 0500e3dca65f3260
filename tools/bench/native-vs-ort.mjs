#!/usr/bin/env node
// The native baseline: our native engine (build/native/imdn-bench) against onnxruntime-node on
// the same model and input size, alternating run by run, with 1 and 2 threads.
//
//   npm install --no-save --ignore-scripts onnxruntime-node@1.30.0   # 290 MB; not a dependency
//   node tools/bench/native-vs-ort.mjs [--model x4] [--size 256] [--runs 3]
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { MODELS, ROOT, SHARED_ONNX, STEMS, median } from './common.mjs';

const { values: o } = parseArgs({
  options: {
    model: { type: 'string', default: 'x4' },
    size: { type: 'string', default: '256' },
    runs: { type: 'string', default: '3' },
  },
});
let ort;
try {
  ort = (await import(/** @type {string} */ ('onnxruntime-node'))).default;
} catch {
  console.error('onnxruntime-node is not installed: npm install --no-save --ignore-scripts onnxruntime-node@1.30.0');
  process.exit(2);
}
const size = Number(o.size);
const model = join(MODELS, `${STEMS[o.model]}.imdn`);
const onnx = join(SHARED_ONNX, `${STEMS[o.model]}.onnx`);
const input = new Float32Array(3 * size * size).map((_, i) => ((i * 7919) % 251) / 250);

console.log(`${o.model} on ${size}x${size}, load average ${loadavg()[0].toFixed(2)}`);
for (const threads of [1, 2]) {
  const session = await ort.InferenceSession.create(readFileSync(onnx), { intraOpNumThreads: threads, interOpNumThreads: 1 });
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', input, [1, 3, size, size]) };
  await session.run(feeds);
  const ours = [];
  const theirs = [];
  for (let r = 0; r < Math.max(1, Number(o.runs)); r++) {
    // imdn-bench warms up itself and prints the time of its measured run.
    const out = execFileSync(
      join(ROOT, 'build', 'native', 'imdn-bench'),
      ['--model', model, '--size', String(size), '--threads', String(threads), '--runs', '1'],
      { encoding: 'utf8' },
    );
    ours.push(Number(/median ([\d.]+) ms/.exec(out)?.[1]));
    await session.run(feeds); // warm again after the other process ran (as imdn-bench warms up)
    const t = performance.now();
    await session.run(feeds);
    theirs.push(performance.now() - t);
  }
  await session.release();
  const a = median(ours);
  const b = median(theirs);
  console.log(`${threads} thread(s): imdn native ${a.toFixed(0)} ms, onnxruntime-node ${b.toFixed(0)} ms, ${(b / a).toFixed(2)}x`);
}
