// Shared by the benchmark scripts: where things are, model names, medians, the input.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED_ONNX = join(ROOT, '..', 'shared', 'imdn', 'onnx');
export const MODELS = process.env.IMDN_MODELS_DIR ?? join(ROOT, 'build', 'models');

/** Model name -> file stem of its .imdn and of its ONNX export (../shared/imdn/onnx). */
/** @type {Record<string, string>} */
export const STEMS = { x2: 'IMDN_x2', x3: 'IMDN_x3', x4: 'IMDN_x4', rtc: 'IMDN_RTC' };

/** @param {number[]} a */
export const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/** The benchmarks' deterministic input: side x side RGB bytes of noise (an LCG, seed 1). */
/** @param {number} side */
export function noiseRgb(side) {
  const rgb = new Uint8Array(side * side * 3);
  let seed = 1;
  for (let i = 0; i < rgb.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    rgb[i] = seed >>> 24;
  }
  return rgb;
}
