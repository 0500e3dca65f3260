// Shared by the benchmark scripts: where things are, model names, medians.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED_ONNX = join(ROOT, '..', 'shared', 'imdn', 'onnx');
export const MODELS = process.env.IMDN_MODELS_DIR ?? join(ROOT, 'build', 'models');

/** Model name -> file stem of its .imdn and of its ONNX export (../shared/imdn/onnx). */
export const STEMS = { x2: 'IMDN_x2', x3: 'IMDN_x3', x4: 'IMDN_x4', rtc: 'IMDN_RTC' };

export const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
