// A worker_threads worker made to look like the classic Web Worker that Emscripten's pthread
// script (dist/imdn-mt.worker.js, built for web and worker) expects: self, postMessage and
// onmessage. Started by wasm/node-threads.js.
import { parentPort, workerData } from 'node:worker_threads';

import { availableParallelism } from 'node:os';

const g = /** @type {any} */ (globalThis); // Node's globals, given what a browser worker has
g.self = globalThis;
if (typeof g.navigator !== 'object') g.navigator = { hardwareConcurrency: availableParallelism() };
g.postMessage = (/** @type {unknown} */ message, /** @type {any[]} */ transfer) => parentPort?.postMessage(message, transfer);
await import(workerData.url); // sets self.onmessage
parentPort?.on('message', (data) => g.onmessage({ data }));
