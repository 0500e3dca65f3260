#!/usr/bin/env node
// imdn-upscale (Node): upscale an image file with the WebAssembly engine in worker threads, or
// convert a model file.
//
//   npx imdn-upscale photo.jpg -o photo-x4.png [--model x4|FILE] [--workers N] [--tile N]
//   npx imdn-upscale convert IMDN_x4.pth IMDN_x4.imdn [--f16]
import { existsSync, statSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { message } from './engine.js';
import { convertModel, createUpscaler, KNOWN_MODELS, modelCacheDir, readImage, writePng } from './node.js';

const names = Object.keys(KNOWN_MODELS).join(', ');
const usage = `usage: imdn-upscale INPUT -o OUTPUT.png [--model NAME|FILE] [options]
       imdn-upscale convert MODEL OUTPUT.imdn [--f16]

  --model NAME|FILE   ${names} (the authors' checkpoints, downloaded once and cached), or a
                      model file: the authors' .pth (either PyTorch format) or .imdn. Default: x4
  --models-dir DIR    take named models from DIR (the authors' .pth files) instead
                      (default: $IMDN_MODELS_DIR, else download; cache: ${modelCacheDir()})
  --workers N         worker threads (default: one per core)
  --tile N            tile side in input pixels (default: 256)
  --scale-to WxH      IMDN_AS only: output size
  --max-pixels N      largest input image decoded (default: 67108864 = 8192 x 8192)
  --memory-limit MIB  memory one image may hold in the engine (default: 352): float32 feature
                      maps where they fit, else float16 ones, else float16 ones with the blocks
                      computed twice; larger images are refused up front
  -q, --quiet         no progress bar

  convert             writes MODEL (.pth or .imdn) as an .imdn file; --f16 stores float16 values
                      (half the size; Set5 PSNR within 0.001 dB of float32)
`;

/** @param {string} message @param {number} [code] @returns {never} */
function fail(message, code = 1) {
  process.stderr.write(`imdn-upscale: ${message}\n`);
  process.exit(code);
}

let args;
try {
  args = parseArgs({
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      model: { type: 'string', short: 'm' },
      'models-dir': { type: 'string' },
      workers: { type: 'string' },
      tile: { type: 'string' },
      'scale-to': { type: 'string' },
      'max-pixels': { type: 'string' },
      'memory-limit': { type: 'string' },
      f16: { type: 'boolean' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
    },
  });
} catch (e) {
  fail(`${message(e)}\n${usage}`, 2);
}
const { values: o, positionals } = args;
if (o.help) {
  process.stdout.write(usage);
  process.exit(0);
}

// Checked before any work: an input that is a file, an output whose folder exists.
/** @param {string} path @param {string} what */
function inputFile(path, what) {
  if (!existsSync(path)) fail(`no ${what} ${path}`);
  if (statSync(path).isDirectory()) fail(`the ${what} ${path} is a folder; give a file`);
}
/** @param {string} path @param {string} example */
function outputFile(path, example) {
  const dir = dirname(resolve(path));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) fail(`the output folder ${dir} does not exist`);
  if (existsSync(path) && statSync(path).isDirectory()) fail(`the output ${path} is a folder; give a file name such as ${path.replace(/\/$/, '')}/${example}`);
}

if (positionals[0] === 'convert') {
  if (positionals.length !== 3) fail(`convert needs MODEL and OUTPUT.imdn\n${usage}`, 2);
  const [, from, to] = positionals;
  inputFile(from, 'model file');
  outputFile(to, 'model.imdn');
  try {
    const r = await convertModel(from, { f16: !!o.f16 });
    const tmp = `${to}.${process.pid}.tmp`;
    await writeFile(tmp, r.data);
    await rename(tmp, to).catch(async (e) => {
      await rm(tmp, { force: true });
      throw e;
    });
    if (!o.quiet) process.stdout.write(`${to}: ${r.arch} x${r.scale}, ${r.data.length} bytes${o.f16 ? ' (float16)' : ''}\n`);
  } catch (e) {
    fail(message(e).replace(/^imdn: /, ''));
  }
  process.exit(0);
}

if (positionals.length !== 1 || !o.output) fail(`need one INPUT and -o OUTPUT\n${usage}`, 2);

/** @param {string} name @param {string} text */
function integer(name, text) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) fail(`--${name} takes a positive integer, got ${text}`, 2);
  return n;
}

const model = o.model ?? 'x4';
let modelBaseUrl = o['models-dir'] ?? (process.env.IMDN_MODELS_DIR || undefined);
if (!Object.hasOwn(KNOWN_MODELS, model)) {
  if (!existsSync(model)) fail(`no model file ${model} (named models: ${names})`);
  modelBaseUrl = undefined;
}
const input = positionals[0];
inputFile(input, 'input file');
outputFile(o.output, 'out.png');
/** @type {import('./types.js').UpscaleOptions} */
const options = {};
if (o['scale-to']) {
  const m = /^(\d+)[xX](\d+)$/.exec(o['scale-to']) ?? fail('--scale-to takes WIDTHxHEIGHT, e.g. 1920x1080', 2);
  options.targetWidth = Number(m[1]);
  options.targetHeight = Number(m[2]);
}

const showBar = !o.quiet && process.stderr.isTTY;
const started = performance.now();
/** @param {{ done: number, total: number }} p */
function bar({ done, total }) {
  const width = 30;
  const filled = Math.round((done / total) * width);
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} tiles ${secs}s`);
  if (done === total) process.stderr.write('\n');
}
/** @param {{ loaded: number, total: number | null, url: string }} p */
function downloading({ loaded, total, url }) {
  const file = url.split('/').pop();
  const of = total ? ` of ${(total / 2 ** 20).toFixed(1)} MiB` : '';
  process.stderr.write(`\rdownloading ${file}: ${(loaded / 2 ** 20).toFixed(1)} MiB${of}`);
  if (total && loaded === total) process.stderr.write('\n');
}

const controller = new AbortController();
process.once('SIGINT', () => controller.abort());

let up;
try {
  up = await createUpscaler({
    model,
    modelBaseUrl,
    ...(showBar ? { onDownloadProgress: downloading } : {}),
    ...(o.workers ? { workers: integer('workers', o.workers) } : {}),
    ...(o.tile ? { tileSize: integer('tile', o.tile) } : {}),
    ...(o['memory-limit'] ? { memoryLimit: integer('memory-limit', o['memory-limit']) * 2 ** 20 } : {}),
  });
  const image = await readImage(input, o['max-pixels'] ? { maxPixels: integer('max-pixels', o['max-pixels']) } : {});
  const result = await up.upscale(image, { ...options, signal: controller.signal, onProgress: showBar ? bar : undefined });
  await writePng(o.output, result);
  if (!o.quiet) {
    const ms = Math.round(performance.now() - started);
    process.stdout.write(`${o.output}: ${image.width}x${image.height} -> ${result.width}x${result.height} with ${up.info.arch} in ${ms} ms\n`);
  }
} catch (e) {
  if (/** @type {{ name?: unknown }} */ (e)?.name === 'AbortError') fail('interrupted', 130);
  fail(message(e).replace(/^imdn: /, ''));
} finally {
  up?.dispose();
}
