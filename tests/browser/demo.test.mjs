// The demo page in real headless Chromium (Debian's package, driven by playwright-core): upscale
// a Set5 image and check its quality, cancel a long run and run again, keep transparency, show
// errors on the page. Writes a screenshot to build/browser/demo.png.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { CHROMIUM, launchChromium } from '../../tools/chromium.mjs';
import { serve } from '../../tools/serve.mjs';
import { encodePng, readImage } from '../../wasm/node.js';
import { IMDN, ROOT, psnrY, randomModel, skipWithoutData } from '../node/helpers.mjs';

const noBrowser = !existsSync(CHROMIUM) && `no ${CHROMIUM}`;
// The page loads models by name, which are the authors' files (sha256-checked): the tests that run
// them need ../shared; the others run on any clone.
const skip = skipWithoutData || noBrowser;

let server;
let browser;
let page;
const tmp = mkdtempSync(join(tmpdir(), 'imdn-browser-'));

before(async () => {
  if (noBrowser) return;
  server = await serve({ port: 0 });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1000, height: 1100 } });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  // The page fetches the authors' checkpoints by name; here from this server (a link to ../shared's).
  mkdirSync(join(ROOT, 'build', 'browser'), { recursive: true });
  rmSync(join(ROOT, 'build', 'browser', 'checkpoints'), { force: true });
  if (!skipWithoutData) symlinkSync(join(IMDN, 'checkpoints'), join(ROOT, 'build', 'browser', 'checkpoints'), 'dir');
  copyFileSync(randomModel('rtc'), join(ROOT, 'build', 'browser', 'random-rtc.imdn'));
  await page.goto(`${server.url}web/?models=${encodeURIComponent(`${server.url}build/browser/checkpoints/`)}`);
  await page.waitForFunction(() => document.body.dataset.state === 'idle');
});

after(async () => {
  await browser?.close();
  await server?.close();
});

async function upscale(file, { model, tile = '256', workers = '2', exact = 'exact' }) {
  await page.setInputFiles('#file', file);
  await page.waitForFunction(() => document.body.dataset.state === 'ready');
  await page.selectOption('#model', model);
  await page.selectOption('#tile', tile);
  await page.selectOption('#exact', exact);
  await page.fill('#workers', workers);
  await page.click('#run');
}

async function canvasPixels() {
  const b64 = await page.evaluate(() => {
    const c = document.getElementById('output');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let s = '';
    for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode(...d.subarray(i, i + 0x8000));
    return [c.width, c.height, btoa(s)];
  });
  const [width, height, data] = b64;
  return { width, height, channels: 4, data: new Uint8Array(Buffer.from(data, 'base64')) };
}

test('SIMD is reported available', { skip: noBrowser }, async () => {
  assert.match(await page.textContent('#simd'), /available/);
});

test('x4 butterfly through the page matches the official output', { skip }, async () => {
  await upscale(join(IMDN, 'datasets', 'Set5_LR', 'x4', 'butterflyx4.bmp'), { model: 'x4' });
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 120000 });
  assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', await page.textContent('#error'));
  const out = await canvasPixels();
  assert.deepEqual([out.width, out.height], [256, 256]);
  const hr = await readImage(join(IMDN, 'datasets', 'Set5_HR', 'butterfly.bmp'));
  const ref = await readImage(join(IMDN, 'reference', 'IMDN_x4_butterfly_SR.png'));
  const got = psnrY(out, hr, 4);
  const want = psnrY(ref, hr, 4);
  assert.ok(Math.abs(got - want) <= 0.01, `page ${got.toFixed(4)} dB vs official ${want.toFixed(4)} dB`);
  assert.match(await page.textContent('#status'), /64 × 64 → 256 × 256 in [\d.]+ s with IMDN, 2 threads/);
  assert.match(await page.textContent('#progress-text'), /1 \/ 1 tiles · 100%/);
  mkdirSync(join(ROOT, 'build', 'browser'), { recursive: true });
  await page.screenshot({ path: join(ROOT, 'build', 'browser', 'demo.png'), fullPage: true });
});

test('Cancel stops a long run and the next run succeeds', { skip }, async () => {
  await upscale(join(IMDN, 'datasets', 'Set5_HR', 'baby.bmp'), { model: 'x4', tile: '64', workers: '2' });
  await page.waitForFunction(() => window.imdnDemo.progress?.done >= 1, null, { timeout: 120000 });
  // The page is cross-origin isolated: 2 threads of one instance, which reports its own units of
  // work: 64 tiles x (stem, tail), 6 blocks streamed down the image (a step per 64 rows: 8), and
  // 6 x 16 pointwise chunks (512 x 512 / 16384 px).
  assert.equal(await page.evaluate(() => window.imdnDemo.progress.total), 64 * 2 + 6 * 8 + 6 * 16);
  const clicked = Date.now();
  await page.click('#cancel');
  await page.waitForFunction(() => document.body.dataset.state === 'cancelled', null, { timeout: 30000 });
  const cancelMs = Date.now() - clicked;
  assert.match(await page.textContent('#progress-text'), /Cancelled/);
  console.log(`cancelled ${cancelMs} ms after the click`);
  await upscale(join(IMDN, 'datasets', 'Set5_LR', 'x2', 'birdx2.bmp'), { model: 'rtc', tile: '64' });
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 120000 });
  assert.equal(await page.evaluate(() => document.body.dataset.state), 'done');
  // Threads, and every tile painted as it finished (9 tiles of 64 px over 144 x 144).
  const { painted, tiles } = await page.evaluate(() => ({ painted: window.imdnDemo.painted, tiles: window.imdnDemo.progress.tiles }));
  assert.ok(tiles.total >= 4 && painted === tiles.total, `${painted} of ${tiles.total} tiles painted`);
  const out = await canvasPixels();
  assert.deepEqual([out.width, out.height], [288, 288]);
});

test('the threaded instance reports every finished tile with its pixels in place', { skip: noBrowser }, async () => {
  const r = await page.evaluate(async () => {
    const { createUpscaler } = await import('/wasm/browser.js');
    const data = new Uint8Array(120 * 90 * 3).map((_, i) => (i * 53) % 256);
    const up = await createUpscaler({ model: '/build/browser/random-rtc.imdn', workers: 2, tileSize: 64 });
    const rects = [];
    let early = true; // every reported tile's pixels were in the output when it was reported
    const out = await up.upscale(
      { data, width: 120, height: 90, channels: 3 },
      {
        onProgress: (p) => {
          if (!p.tile) return;
          rects.push(p.tile);
          const { x, y, width } = p.tile;
          if (p.output.data[(y * p.output.width + x + width - 1) * 4 + 3] !== 255) early = false;
        },
      },
    );
    up.dispose();
    const covered = rects.reduce((n, t) => n + t.width * t.height, 0);
    return { threads: up.threads, tiles: rects.length, covered, pixels: out.width * out.height, early };
  });
  assert.equal(r.threads, 2);
  assert.ok(r.tiles >= 4, `${r.tiles} tiles`);
  assert.equal(r.covered, r.pixels, 'the reported tiles cover the output once');
  assert.ok(r.early);
});

test('transparency survives', { skip }, async () => {
  const w = 48;
  const h = 32;
  const data = new Uint8Array(w * h * 4);
  for (let p = 0; p < w * h; p++) data.set([30, 140, 220, p % w < w / 2 ? 0 : 255], p * 4);
  const file = join(tmp, 'alpha.png');
  writeFileSync(file, await encodePng({ data, width: w, height: h, channels: 4 }));
  await upscale(file, { model: 'rtc' });
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 60000 });
  assert.equal(await page.evaluate(() => document.body.dataset.state), 'done');
  const out = await canvasPixels();
  assert.deepEqual([out.width, out.height], [96, 64]);
  const alpha = (x, y) => out.data[(y * 96 + x) * 4 + 3];
  assert.ok(alpha(10, 30) <= 2, `left alpha ${alpha(10, 30)}`);
  assert.ok(alpha(85, 30) >= 253, `right alpha ${alpha(85, 30)}`);
});

test('a file that is not an image shows a readable error on the page', { skip: noBrowser }, async () => {
  const file = join(tmp, 'notes.png');
  writeFileSync(file, 'these are not pixels');
  await page.setInputFiles('#file', file);
  await page.waitForFunction(() => document.body.dataset.state === 'error');
  assert.match(await page.textContent('#error'), /not an image this browser can open/);
  assert.equal(await page.isVisible('#error'), true);
});

test('IMDN-AS takes a scale and makes that size', { skip }, async () => {
  await page.setInputFiles('#file', join(IMDN, 'datasets', 'Set5_LR', 'x4', 'headx4.bmp'));
  await page.waitForFunction(() => document.body.dataset.state === 'ready');
  await page.selectOption('#model', 'as');
  assert.equal(await page.isVisible('#target'), true);
  await page.fill('#target', '1.5');
  await page.click('#run');
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 60000 });
  assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', await page.textContent('#error'));
  const out = await canvasPixels();
  assert.deepEqual([out.width, out.height], [105, 105]); // 70 x 1.5
  await page.selectOption('#model', 'x4');
  assert.equal(await page.isVisible('#target'), false);
});

test('a page without cross-origin isolation runs on single-threaded workers, the same bytes, tiles reported', { skip: noBrowser }, async () => {
  const plain = await serve({ port: 0, isolate: false });
  const other = await browser.newPage();
  try {
    other.on('pageerror', (e) => console.error('page error:', e.message));
    await other.goto(`${plain.url}web/`);
    // The authors' file, read in the page (or, on a clone without ../shared, some model).
    const model = `${plain.url}build/browser/${skipWithoutData ? 'random-rtc.imdn' : 'checkpoints/model_RTC.pth'}`;
    const r = await other.evaluate(async (model) => {
      const { createUpscaler } = await import('/wasm/browser.js');
      const data = new Uint8Array(48 * 40 * 3).map((_, i) => (i * 37) % 256);
      const image = { data, width: 48, height: 40, channels: 3 };
      const pool = await createUpscaler({ model, workers: 2, tileSize: 16 });
      const whole = await createUpscaler({ model, workers: 1, tileSize: 4096 });
      let painted = 0;
      let tiles = 0;
      const a = await pool.upscale(image, {
        raw: true,
        onProgress: (p) => {
          painted += p.tile ? 1 : 0;
          tiles = p.tiles.total;
        },
      });
      const b = await whole.upscale(image, { raw: true });
      let diff = 0;
      for (let i = 0; i < a.data.length; i++) diff = Math.max(diff, Math.abs(a.data[i] - b.data[i]));
      const refused = await createUpscaler({ model, workers: 2, threads: true }).then(
        () => '',
        (e) => e.message,
      );
      const out = { isolated: crossOriginIsolated, threads: pool.threads, workers: pool.workers, diff, refused, width: a.width, painted, tiles };
      pool.dispose();
      whole.dispose();
      return out;
    }, model);
    assert.equal(r.isolated, false);
    assert.equal(r.threads, 1);
    assert.equal(r.workers, 2);
    assert.equal(r.width, 96);
    assert.equal(r.diff, 0, `tiles on 2 workers vs whole: ${r.diff}`);
    assert.ok(r.tiles >= 4 && r.painted === r.tiles, `${r.painted} of ${r.tiles} tiles reported`);
    assert.match(r.refused, /threads need SharedArrayBuffer/);
  } finally {
    await other.close();
    await plain.close();
  }
});

test('the page fits a phone screen', { skip: noBrowser }, async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than the screen`);
  await page.screenshot({ path: join(ROOT, 'build', 'browser', 'demo-phone.png'), fullPage: true });
  await page.setViewportSize({ width: 1000, height: 1100 });
});
