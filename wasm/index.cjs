'use strict';
// CommonJS entry. Node 20 cannot require() an ES module, so every function here loads the ES
// module on first use and returns a Promise, as the ES functions do.
const load = () => import('./node.js');

exports.createUpscaler = (options) => load().then((m) => m.createUpscaler(options));
exports.decodeImage = (bytes) => load().then((m) => m.decodeImage(bytes));
exports.readImage = (path) => load().then((m) => m.readImage(path));
exports.encodePng = (image) => load().then((m) => m.encodePng(image));
exports.writePng = (path, image) => load().then((m) => m.writePng(path, image));
exports.hasWasmSimd = () => load().then((m) => m.hasWasmSimd());
