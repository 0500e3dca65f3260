#!/usr/bin/env node
// Exact tiling, measured: wall time of tiled against whole-image inference on a 512x512 x4 input
// with 1 and 2 workers (2: threads of one instance where memory can be shared; interleaved,
// medians), and the peak memory of a 1024x1024 -> 4096x4096
// x4 upscale under Node and in headless Chromium (main thread + workers).
//
//   node tools/bench/tiling.mjs [--runs 3] [--skip-time] [--skip-memory] [--big 1024]
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { createUpscaler } from '../../wasm/node.js';
import { MODELS, ROOT, median } from './common.mjs';

const { values: o } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    big: { type: 'string', default: '1024' },
    model: { type: 'string', default: join(MODELS, 'IMDN_x4.imdn') },
    'skip-time': { type: 'boolean', default: false },
    'skip-memory': { type: 'boolean', default: false },
  },
});

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

if (!o['skip-time']) {
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
  const times = configs.map(() => []);
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

if (!o['skip-memory']) {
  const side = Number(o.big);
  // Node: worker threads share the process, so its resident set is main + workers.
  {
    const up = await createUpscaler({ model: o.model, workers: 2 });
    let peak = 0;
    const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    const t = performance.now();
    const out = await up.upscale(image(side), {});
    clearInterval(sample);
    peak = Math.max(peak, process.memoryUsage().rss);
    const how = up.threads > 1 ? `main + 1 worker of ${up.threads} threads` : 'main + 2 workers';
    console.log(
      `Node: ${side}x${side} -> ${out.width}x${out.height} in ${((performance.now() - t) / 1000).toFixed(1)} s, peak resident ${(peak / 2 ** 20).toFixed(0)} MiB (${how})`,
    );
    up.dispose();
  }
  // Chromium: the page and its workers live in one renderer process; sample every Chromium
  // process's resident set with ps.
  const { CHROMIUM, launchChromium } = await import('../chromium.mjs');
  if (existsSync(CHROMIUM)) {
    const { serve } = await import('../serve.mjs');
    const server = await serve({ port: 0 });
    const browser = await launchChromium();
    const page = await browser.newPage();
    await page.goto(`${server.url}web/`);
    const rss = () => {
      const lines = execFileSync('ps', ['-C', 'chromium', '-o', 'rss=,args='], { encoding: 'utf8' }).trim().split('\n');
      let renderer = 0;
      let all = 0;
      for (const l of lines) {
        const kb = Number(l.trim().split(/\s+/)[0]) * 1024;
        all += kb;
        if (l.includes('--type=renderer')) renderer = Math.max(renderer, kb);
      }
      return { renderer, all };
    };
    let peak = { renderer: 0, all: 0 };
    const sample = setInterval(() => {
      const r = rss();
      peak = { renderer: Math.max(peak.renderer, r.renderer), all: Math.max(peak.all, r.all) };
    }, 100);
    const model = `${server.url}${o.model.slice(ROOT.length + 1)}`;
    const result = await page.evaluate(
      async ({ side, model }) => {
        const { createUpscaler } = await import('/wasm/browser.js');
        const up = await createUpscaler({ model, workers: 2 });
        const threads = up.threads;
        const data = new Uint8Array(side * side * 3).map((_, i) => (i * 7919) % 251);
        const t = performance.now();
        const out = await up.upscale({ data, width: side, height: side, channels: 3 });
        const ms = performance.now() - t;
        up.dispose();
        return { width: out.width, height: out.height, ms, threads };
      },
      { side, model },
    );
    clearInterval(sample);
    console.log(
      `Chromium: ${side}x${side} -> ${result.width}x${result.height} in ${(result.ms / 1000).toFixed(1)} s, peak resident ${(peak.renderer / 2 ** 20).toFixed(0)} MiB in the renderer (page + ${result.threads > 1 ? `1 worker of ${result.threads} threads` : '2 workers'}), ${(peak.all / 2 ** 20).toFixed(0)} MiB all Chromium processes`,
    );
    await browser.close();
    await server.close();
  }
}
