#!/usr/bin/env node
// imdn-upscale (Node): upscale an image file with the WebAssembly engine in worker threads.
//
//   npx imdn-upscale photo.jpg -o photo-x4.png --model x4 [--models-dir DIR] [--workers N] [--tile N]
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { createUpscaler, KNOWN_MODELS, readImage, writePng } from './node.js';

const usage = `usage: imdn-upscale INPUT -o OUTPUT.png --model NAME|FILE [options]

  --model NAME|FILE   x2, x3, x4, as, rtc, rte (found in --models-dir), or a .imdn path
  --models-dir DIR    where named models are (default: $IMDN_MODELS_DIR)
  --workers N         worker threads (default: one per core)
  --tile N            tile side in input pixels (default: 256)
  --scale-to WxH      IMDN_AS only: output size
  -q, --quiet         no progress bar
`;

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
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
    },
  });
} catch (e) {
  fail(`${e.message}\n${usage}`, 2);
}
const { values: o, positionals } = args;
if (o.help) {
  process.stdout.write(usage);
  process.exit(0);
}
if (positionals.length !== 1 || !o.output || !o.model) fail(`need one INPUT, -o OUTPUT and --model\n${usage}`, 2);

function integer(name, text) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) fail(`--${name} takes a positive integer, got ${text}`, 2);
  return n;
}

let model = o.model;
let modelBaseUrl = o['models-dir'] ?? process.env.IMDN_MODELS_DIR;
if (!Object.hasOwn(KNOWN_MODELS, model)) {
  if (!existsSync(model)) fail(`no model file ${model} (named models: ${Object.keys(KNOWN_MODELS).join(', ')})`);
  modelBaseUrl = undefined;
} else if (!modelBaseUrl) {
  fail(`model '${model}' is a name: say where its file ${KNOWN_MODELS[model]} is with --models-dir DIR or IMDN_MODELS_DIR, or pass the file itself`, 2);
}
// Checked before any work: the input is a file, the output's folder exists.
const input = positionals[0];
if (!existsSync(input)) fail(`no input file ${input}`);
if (statSync(input).isDirectory()) fail(`the input ${input} is a folder; give an image file`);
const outDir = dirname(resolve(o.output));
if (!existsSync(outDir) || !statSync(outDir).isDirectory()) fail(`the output folder ${outDir} does not exist`);
if (existsSync(o.output) && statSync(o.output).isDirectory()) fail(`the output ${o.output} is a folder; give a file name such as ${o.output.replace(/\/$/, '')}/out.png`);
const options = {};
if (o['scale-to']) {
  const m = /^(\d+)[xX](\d+)$/.exec(o['scale-to']);
  if (!m) fail('--scale-to takes WIDTHxHEIGHT, e.g. 1920x1080', 2);
  options.targetWidth = Number(m[1]);
  options.targetHeight = Number(m[2]);
}

const showBar = !o.quiet && process.stderr.isTTY;
const started = performance.now();
function bar({ done, total }) {
  const width = 30;
  const filled = Math.round((done / total) * width);
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} tiles ${secs}s`);
  if (done === total) process.stderr.write('\n');
}

const controller = new AbortController();
process.once('SIGINT', () => controller.abort());

let up;
try {
  up = await createUpscaler({
    model,
    modelBaseUrl,
    ...(o.workers ? { workers: integer('workers', o.workers) } : {}),
    ...(o.tile ? { tileSize: integer('tile', o.tile) } : {}),
  });
  const image = await readImage(input);
  const result = await up.upscale(image, { ...options, signal: controller.signal, onProgress: showBar ? bar : undefined });
  await writePng(o.output, result);
  if (!o.quiet) {
    const ms = Math.round(performance.now() - started);
    process.stdout.write(`${o.output}: ${image.width}x${image.height} -> ${result.width}x${result.height} with ${up.info.arch} in ${ms} ms\n`);
  }
} catch (e) {
  if (e.name === 'AbortError') fail('interrupted', 130);
  fail(e.message.replace(/^imdn: /, ''));
} finally {
  up?.dispose();
}
