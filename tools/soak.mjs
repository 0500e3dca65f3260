#!/usr/bin/env node
// Soak: long use of the package's upscalers as an app would make it, with the mistakes and
// hostile inputs an app meets mixed in: calls of random sizes on several models, random aborts,
// several calls at once, decode bombs, garbage bytes and bad options. Every normal call's output
// must equal a fresh upscaler's for the same input; resident memory is reported at the start,
// after 100 calls and at the end.
//
//   node tools/soak.mjs [--calls 500] [--seed 1] [--workers 2]
//
// Random-weight models of the official shapes (the native tests' imdn-random-model, from the
// native build) unless --official, which takes the authors' checkpoints from ../shared.
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { createUpscaler } from '../wasm/node.js';
import { IMDN, ROOT, randomModel } from '../tests/node/helpers.mjs';

const { values: o } = parseArgs({
  options: {
    calls: { type: 'string', default: '500' },
    seed: { type: 'string', default: '1' },
    workers: { type: 'string', default: '2' },
    official: { type: 'boolean' },
  },
});
const calls = Number(o.calls);
const workers = Number(o.workers);
let state = Number(o.seed) >>> 0 || 1;
const rand = () => {
  state = (state * 1664525 + 1013904223) >>> 0;
  return state / 2 ** 32;
};
/** @template T @param {T[]} a @returns {T} */
const pick = (a) => a[Math.floor(rand() * a.length)];
const mib = () => (process.memoryUsage().rss / 2 ** 20).toFixed(0);

const NAMES = ['x2', 'x4', 'rtc', 'rte', 'as'];
/** @type {Record<string, string>} */
const CHECKPOINT = { x2: 'IMDN_x2.pth', x4: 'IMDN_x4.pth', rtc: 'model_RTC.pth', rte: 'model_RTE.pth', as: 'IMDN_AS.pth' };
const modelOf = (/** @type {string} */ name) => (o.official ? readFileSync(join(IMDN, 'checkpoints', CHECKPOINT[name])) : readFileSync(randomModel(name)));
const REPRO = join(ROOT, 'tests', 'data', 'repro');
const HOSTILE = [
  ...readdirSync(REPRO).map((f) => [`bomb ${f}`, join(REPRO, f), {}]),
  ['garbage bytes', new Uint8Array(300).map((_, i) => (i * 7) & 255), {}],
  ['null options', null, null],
  ['a signal that is not one', null, { signal: 'x' }],
  [
    'an onProgress that throws',
    null,
    {
      onProgress: () => {
        throw new Error('app bug');
      },
    },
  ],
  ['an onProgress that is a number', null, { onProgress: 5 }],
];

/** @param {number} w @param {number} h @param {number} channels */
function image(w, h, channels) {
  const data = new Uint8Array(w * h * channels);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rand() * 256);
  if (channels === 4 && rand() < 0.5) for (let i = 3; i < data.length; i += 4) data[i] = 255;
  return { data, width: w, height: h, channels };
}

console.log(
  `soak: ${calls} calls, ${workers} workers, seed ${o.seed}, ${o.official ? 'official' : 'random-weight'} models; ${cpus()[0]?.model ?? '?'}, load ${loadavg()[0].toFixed(2)}`,
);
// (any: the soak calls them with hostile inputs and options, which their types rule out)
/** @type {Record<string, any>} */
const ups = {};
for (const name of NAMES) ups[name] = await createUpscaler({ model: modelOf(name), workers });
const rss0 = mib();
let rss100 = null;
/** @type {[string, any, any, any][]} */
const kept = []; // [name, input, options, output] of normal calls, checked at the end
const counts = { normal: 0, aborted: 0, hostile: 0, concurrent: 0, unexpected: 0 };

/** @param {string} name */
async function normal(name) {
  const w = 1 + Math.floor(rand() * 60);
  const h = 1 + Math.floor(rand() * 60);
  const input = image(w, h, pick([1, 2, 3, 4]));
  const options = { tileSize: pick([16, 32, 64, 128, 256]), exact: rand() < 0.85 };
  const out = await ups[name].upscale(input, options);
  counts.normal++;
  if (kept.length < 120 || rand() < 0.25) kept.push([name, input, options, out]);
}

for (let i = 0; i < calls; i++) {
  const r = rand();
  const name = pick(NAMES);
  try {
    if (r < 0.12) {
      const [what, input, options] = pick(HOSTILE);
      const ok = await ups[name].upscale(input ?? image(20, 20, 3), options).then(
        () => true,
        (/** @type {any} */ e) => {
          if (!String(e.message).startsWith('imdn:')) throw new Error(`${what}: not an imdn: error: ${e.message}`);
          return false;
        },
      );
      if (ok) throw new Error(`${what} was accepted`);
      counts.hostile++;
    } else if (r < 0.24) {
      const c = new AbortController();
      const p = ups[name].upscale(image(48, 40, 3), { signal: c.signal, tileSize: 16 });
      setTimeout(() => c.abort(), Math.floor(rand() * 30));
      await p.then(
        () => {},
        (/** @type {any} */ e) => {
          if (e.name !== 'AbortError') throw e;
        },
      );
      counts.aborted++;
    } else if (r < 0.34) {
      await Promise.all([normal(name), normal(pick(NAMES)), normal(name)]);
      counts.concurrent++;
      i += 2;
    } else {
      await normal(name);
    }
  } catch (e) {
    counts.unexpected++;
    console.error(`call ${i}: ${e instanceof Error ? e.message : e}`);
  }
  if (i >= 99 && rss100 === null) rss100 = mib();
}
const rssEnd = mib();
for (const u of Object.values(ups)) u.dispose();

// Every kept output against a fresh upscaler's.
let mismatches = 0;
/** @type {Record<string, any>} */
const fresh = {};
for (const [name, input, options, out] of kept) {
  fresh[name] ??= await createUpscaler({ model: modelOf(name), workers });
  const want = await fresh[name].upscale(input, options);
  if (want.width !== out.width || want.height !== out.height || want.data.some((/** @type {number} */ v, /** @type {number} */ k) => v !== out.data[k])) {
    mismatches++;
    console.error(`mismatch: ${name} ${input.width}x${input.height}x${input.channels} ${JSON.stringify(options)}`);
  }
}
for (const u of Object.values(fresh)) u.dispose();

console.log(
  `soak: ${calls} calls: ${counts.normal} normal (${counts.concurrent} batches of 3 at once), ${counts.aborted} aborted, ${counts.hostile} hostile refused, ` +
    `${counts.unexpected} unexpected errors; ${kept.length} outputs checked against a fresh upscaler, ${mismatches} mismatches; ` +
    `resident ${rss0} MiB at the start, ${rss100 ?? '-'} MiB after 100 calls, ${rssEnd} MiB at the end`,
);
process.exit(mismatches || counts.unexpected ? 1 : 0);
