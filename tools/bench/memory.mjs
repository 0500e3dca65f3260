#!/usr/bin/env node
// Memory, measured: peak resident memory and wall time of one x4 upscale per input size with the
// package's defaults (2 workers: threads of one instance where memory can be shared), under Node
// (the whole process: main thread and workers, a fresh process per size) and in headless
// Chromium (the renderer process, page and workers, on a cross-origin isolated page, a fresh
// browser per size); then the resident memory of the idle upscaler after the job, against a
// fresh one. Prints the plan (memoryNeeded), the CPU model and the load.
//
//   node tools/bench/memory.mjs [--sizes 512,1024,2048] [--platform node,chromium] [--limit BYTES]
//                               [--root DIR]   (another checkout's package, e.g. a before)
//                               [--blank]      (Chromium: an empty page instead of the demo page,
//                                               which holds about 21 MiB more before the package)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { MODELS, ROOT } from './common.mjs';

const { values: o } = parseArgs({
  options: {
    sizes: { type: 'string', default: '512,1024,2048' },
    platform: { type: 'string', default: 'node,chromium' },
    limit: { type: 'string' },
    root: { type: 'string', default: ROOT },
    model: { type: 'string' },
    child: { type: 'string' },
    blank: { type: 'boolean', default: false },
  },
});
const root = resolve(o.root);
// The model: a file inside the package's checkout (Chromium fetches it from there).
o.model = resolve(o.model ?? (root === ROOT ? join(MODELS, 'IMDN_x4.imdn') : join(root, 'build', 'models', 'IMDN_x4.imdn')));
if (!o.model.startsWith(root)) throw new Error(`--model must be inside ${root}`);
const limit = o.limit ? Number(o.limit) : undefined;
const MiB = (/** @type {number} */ b) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const input = (/** @type {number} */ side) => new Uint8Array(side * side * 3).map((_, i) => (i * 7919) % 251);

if (o.child) {
  // One size in this process: { ms, peak, fresh, idle, plan } as JSON on stdout.
  const side = Number(o.child);
  const { createUpscaler } = await import(pathToFileURL(join(root, 'wasm', 'node.js')).href);
  const up = await createUpscaler({ model: o.model, workers: 2, ...(limit ? { memoryLimit: limit } : {}) });
  // (Fresh: once its worker, started with it, has loaded; as in Chromium below.)
  await new Promise((r) => setTimeout(r, 1000));
  globalThis.gc?.();
  const fresh = process.memoryUsage().rss;
  const plan = up.memoryNeeded?.(side, side) ?? null;
  let peak = fresh;
  const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const t = performance.now();
  let ms = 0;
  let error = null;
  try {
    await up.upscale({ data: input(side), width: side, height: side, channels: 3 });
    ms = performance.now() - t;
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  }
  clearInterval(sample);
  peak = Math.max(peak, process.memoryUsage().rss);
  await new Promise((r) => setTimeout(r, 3000)); // (past the idle time after which a grown worker goes)
  globalThis.gc?.();
  await new Promise((r) => setTimeout(r, 500)); // (buffers are swept after the collection)
  const idle = process.memoryUsage().rss;
  process.stdout.write(JSON.stringify({ ms, peak, fresh, idle, plan, error, threads: up.threads }));
  up.dispose();
  process.exit(0);
}

const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(
  `${cpu}, ${cpus().length} cores; load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}; package at ${root}`,
);
const sizes = o.sizes.split(',').map(Number);
const platforms = o.platform.split(',');
/** @param {string} where @param {number} side @param {any} r */
const line = (where, side, r) => {
  const how = (/** @type {any} */ p) =>
    p.recompute
      ? p.streamed
        ? 'blocks recomputed, streamed'
        : `blocks recomputed, tiles ${p.tileSize}`
      : p.streamed
        ? 'blocks streamed'
        : `tiles ${p.tileSize}`;
  const plan = r.plan ? `, plan ${r.plan.maps} maps, ${how(r.plan)}, ${MiB(r.plan.bytes)}` : '';
  if (r.error) return console.log(`${where} ${side}x${side}: refused in ${(r.ms / 1000).toFixed(1)} s: ${r.error}${plan}`);
  console.log(
    `${where} ${side}x${side} -> ${side * 4}x${side * 4}: ${(r.ms / 1000).toFixed(1)} s, peak ${MiB(r.peak)}, idle after ${MiB(r.idle)} (fresh ${MiB(r.fresh)}, +${MiB(r.idle - r.fresh)})${plan}; load ${loadavg()[0].toFixed(2)}`,
  );
};

if (platforms.includes('node')) {
  for (const side of sizes) {
    const args = [process.argv[1], '--child', String(side), '--root', root, '--model', o.model, ...(limit ? ['--limit', String(limit)] : [])];
    const run = spawnSync(process.execPath, ['--expose-gc', ...args], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (run.status !== 0) {
      console.log(`Node ${side}x${side}: failed (${run.status}) ${run.stderr.trim().split('\n').slice(-3).join(' ')}`);
      continue;
    }
    line('Node', side, JSON.parse(run.stdout));
  }
}

if (platforms.includes('chromium')) {
  const { CHROMIUM, launchChromium } = await import('../chromium.mjs');
  if (!existsSync(CHROMIUM)) {
    console.log('Chromium: not installed');
  } else {
    const { serve } = await import('../serve.mjs');
    const server = await serve({ port: 0, root });
    // The renderer's resident set (page and its workers share it): the renderers from ps once,
    // then their /proc status as the job runs (ps 20 times a second took a core's share from it).
    /** @type {number[]} */
    let renderers = [];
    const findRenderers = () => {
      const out = execFileSync('ps', ['-C', 'chromium', '-o', 'pid=,args='], { encoding: 'utf8' }).trim().split('\n');
      renderers = out.filter((l) => l.includes('--type=renderer')).map((l) => Number(l.trim().split(/\s+/)[0]));
    };
    const rssOf = (/** @type {number} */ pid) => {
      try {
        return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
      } catch {
        return 0;
      }
    };
    const renderer = () => Math.max(0, ...renderers.map(rssOf));
    for (const side of sizes) {
      // (--expose-gc: the idle upscaler measured without the caller's dropped result, as in Node.)
      const browser = await launchChromium(['--js-flags=--expose-gc']);
      const page = await browser.newPage();
      // (The blank page: served by the route below, the same origin and isolation headers.)
      const isolated = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
      const blank = { status: 200, contentType: 'text/html', headers: isolated, body: '<!doctype html><title>blank</title>' };
      if (o.blank) await page.route('**/blank.html', (r) => r.fulfill(blank));
      await page.goto(`${server.url}${o.blank ? 'blank.html' : 'web/'}`);
      const model = `${server.url}${resolve(o.model).slice(root.length + 1)}`;
      await page.evaluate(
        async ({ model, limit }) => {
          const { createUpscaler } = await import(/** @type {string} */ ('/wasm/browser.js'));
          if (!globalThis.crossOriginIsolated) throw new Error('the page is not cross-origin isolated: no threads');
          /** @type {any} */ (globalThis).up = await createUpscaler({ model, workers: 2, ...(limit ? { memoryLimit: limit } : {}) });
        },
        { model, limit },
      );
      await new Promise((r) => setTimeout(r, 500));
      findRenderers();
      const fresh = renderer();
      let peak = fresh;
      const sample = setInterval(() => (peak = Math.max(peak, renderer())), 50);
      const r = await page.evaluate(async (side) => {
        const data = new Uint8Array(side * side * 3).map((_, i) => (i * 7919) % 251);
        const plan = /** @type {any} */ (globalThis).up.memoryNeeded?.(side, side) ?? null;
        const t = performance.now();
        try {
          await /** @type {any} */ (globalThis).up.upscale({ data, width: side, height: side, channels: 3 });
          return { ms: performance.now() - t, plan, error: null };
        } catch (e) {
          return { ms: performance.now() - t, plan, error: e instanceof Error ? e.message : String(e) };
        }
      }, side);
      clearInterval(sample);
      peak = Math.max(peak, renderer());
      await new Promise((r) => setTimeout(r, 3000));
      await page.evaluate(() => globalThis.gc?.());
      await new Promise((r) => setTimeout(r, 1500));
      const idle = renderer();
      line('Chromium', side, { ...r, peak, fresh, idle });
      await browser.close();
    }
    await server.close();
  }
}
