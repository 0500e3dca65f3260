// Node entry of the package: createUpscaler over worker_threads, plus decoding and PNG encoding
// with stb inside the WebAssembly module (no native add-on).
import { rename, rm, writeFile } from 'node:fs/promises';

import { checkPixels, createUpscalerWith, KNOWN_MODELS } from './core.js';
import { convertWithModule, decodeWithModule, encodePngWithModule, hasWasmSimd } from './engine.js';
import { modelCacheDir, module, platform, readBytes, why } from './node-platform.js';

export { KNOWN_MODELS, hasWasmSimd, modelCacheDir };

/**
 * Creates an upscaler whose tiles run in worker_threads. See index.d.ts for the options.
 */
export function createUpscaler(options) {
  return createUpscalerWith(platform, options);
}

/**
 * A model file (.imdn, or the authors' .pth in either PyTorch format) as .imdn bytes; f16: values
 * stored as float16 (half the size). Resolves to { data, arch, scale }.
 */
export async function convertModel(source, { f16 = false } = {}) {
  const bytes = source instanceof Uint8Array ? source : source instanceof ArrayBuffer ? new Uint8Array(source) : await readBytes(source);
  return convertWithModule(await module(), bytes, f16);
}

/**
 * Decodes an image file's bytes (PNG, JPEG, BMP, TGA, GIF, PSD, HDR, PNM). maxPixels: the largest
 * image accepted (default 2^26 = 8192 x 8192); decode bombs are refused before allocating.
 */
export async function decodeImage(bytes, { maxPixels } = {}) {
  return decodeWithModule(await module(), bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes), maxPixels ?? 0);
}

/** Reads and decodes an image file. */
export async function readImage(path, options) {
  return decodeImage(await readBytes(path), options);
}

/** Encodes { data, width, height, channels? } (8-bit) as PNG bytes. */
export async function encodePng(image) {
  const { data, width, height, channels } = checkPixels(image);
  return encodePngWithModule(await module(), data, width, height, channels);
}

/** Writes an image as a PNG file (atomically: a temporary file, then a rename). */
export async function writePng(path, image) {
  const png = await encodePng(image);
  try {
    await writeFile(`${path}.tmp`, png);
    await rename(`${path}.tmp`, path);
  } catch (e) {
    await rm(`${path}.tmp`, { force: true }).catch(() => {});
    throw new Error(`imdn: cannot write ${path}: ${e.code === 'ENOENT' ? 'its folder does not exist' : why(e)}`);
  }
}
