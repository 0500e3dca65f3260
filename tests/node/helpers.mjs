// Shared by the Node tests: where things are, and the paper's Y-PSNR.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED = process.env.IMDN_SHARED_DIR ?? join(ROOT, '..', 'shared');
export const IMDN = join(SHARED, 'imdn');
// The official models converted to .imdn by tools/setup.sh (from ../shared's checkpoints).
export const MODELS = process.env.IMDN_TEST_MODELS ?? join(ROOT, 'build', 'models');
export const NATIVE_BIN = process.env.IMDN_NATIVE_BIN ?? join(ROOT, 'build', 'native');
export const SET5 = ['baby', 'bird', 'butterfly', 'head', 'woman'];

export const haveSet5 = existsSync(join(IMDN, 'datasets', 'Set5_HR', 'baby.bmp'));
export const haveModels = existsSync(join(MODELS, 'IMDN_x4.imdn'));
export const skipWithoutData = !(haveSet5 && haveModels) && 'needs ../shared Set5 and converted models (tools/test.sh makes them)';

export const model = (/** @type {string} */ name) => join(MODELS, name);

/**
 * A random-weight model of the official shape of `name` (x2, x3, x4, as, rtc, rte), written by the
 * native tests' imdn-random-model: for tests that need only *some* model, so that they run on a
 * clone without ../shared.
 * @param {string} name @param {number} [seed]
 */
export function randomModel(name, seed = 1) {
  const dir = join(tmpdir(), 'imdn-random-models');
  const file = join(dir, `${name}-${seed}.imdn`);
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    execFileSync(join(NATIVE_BIN, 'tests', 'imdn-random-model'), [name, file, String(seed)]);
  }
  return file;
}

/** Y of BT.601 (MATLAB rgb2ycbcr), kept as a float, from 8-bit RGB(A) values. */
/** @param {ArrayLike<number>} data @param {number} channels @param {number} i */
function luma(data, channels, i) {
  const r = data[i * channels] / 255;
  const g = channels >= 3 ? data[i * channels + 1] / 255 : r;
  const b = channels >= 3 ? data[i * channels + 2] / 255 : r;
  return 16 + 65.481 * r + 128.553 * g + 24.966 * b;
}

/** The paper's PSNR: Y channel, `shave` border pixels removed, reference cropped to the result. */
/**
 * @param {{ data: ArrayLike<number>, width: number, height: number, channels?: number }} result
 * @param {{ data: ArrayLike<number>, width: number, height: number, channels?: number }} reference
 * @param {number} shave
 */
export function psnrY(result, reference, shave) {
  const rc = result.channels ?? 4;
  const hc = reference.channels ?? 4;
  let se = 0;
  let n = 0;
  for (let y = shave; y < result.height - shave; y++) {
    for (let x = shave; x < result.width - shave; x++) {
      const d = luma(result.data, rc, y * result.width + x) - luma(reference.data, hc, y * reference.width + x);
      se += d * d;
      n++;
    }
  }
  return 10 * Math.log10((255 * 255) / (se / n));
}
