'use strict';
// CommonJS entry (require('imdn-wasm') under Node). Node 20 cannot require() an ES module, so the
// functions that need the engine load the ES entry on first use and return a Promise, as they do
// there; hasWasmSimd() and KNOWN_MODELS are plain values here as in ES (tests/node/package.test.mjs
// checks that they equal the ES ones).
const load = () => import('./node.js');

// The same 30-byte probe as engine.js: a module using a v128 instruction.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

exports.KNOWN_MODELS = Object.freeze({
  x2: 'IMDN_x2.pth',
  x3: 'IMDN_x3.pth',
  x4: 'IMDN_x4.pth',
  as: 'IMDN_AS.pth',
  rtc: 'model_RTC.pth',
  rte: 'model_RTE.pth',
});
exports.hasWasmSimd = () => {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
};
exports.createUpscaler = (options) => load().then((m) => m.createUpscaler(options));
exports.decodeImage = (bytes, options) => load().then((m) => m.decodeImage(bytes, options));
exports.readImage = (path, options) => load().then((m) => m.readImage(path, options));
exports.encodePng = (image) => load().then((m) => m.encodePng(image));
exports.writePng = (path, image) => load().then((m) => m.writePng(path, image));
exports.convertModel = (source, options) => load().then((m) => m.convertModel(source, options));
exports.modelCacheDir = () => {
  const { join } = require('node:path');
  if (process.env.IMDN_CACHE_DIR) return join(process.env.IMDN_CACHE_DIR, 'models');
  return join(process.env.XDG_CACHE_HOME || join(require('node:os').homedir(), '.cache'), 'imdn-wasm', 'models');
};
