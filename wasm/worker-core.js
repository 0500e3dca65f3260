// The message loop of one worker of the pool: a WebAssembly instance that runs what it is sent,
// single-threaded, or (threads > 1) the threaded module with threads - 1 pthread workers of its
// own. The entry files give it a port and the module factories their context can load: worker.js
// (browser, single-threaded), worker-mt.js (browser, threaded), worker-node.js (Node). Nothing here
// awaits at the top level or imports by condition, so bundlers can emit any of them as a classic
// (IIFE) or module worker.
//
// The messages, a request and a reply type each, are declared in protocol.d.ts (ToWorker,
// FromWorker), which the pool (pool.js) is checked against too.
import { instantiate, message, WasmEngine } from './engine.js';

/**
 * @typedef {import('./protocol.js').ToWorker} ToWorker
 * @typedef {import('./protocol.js').UnitRequest} UnitRequest
 */

/**
 * port: how this worker receives requests and sends replies. load(threads) resolves to
 * { factory, options }: the Emscripten factory for that many threads and the Module settings it
 * needs.
 * @param {import('./protocol.js').Port} port
 * @param {(threads: number) => Promise<{ factory: import('./platform.js').Factory, options?: Record<string, unknown> }>} load
 */
export function serve(port, load) {
  /** @type {WasmEngine | null} */
  let engine = null;
  /** @type {Promise<unknown> | null} */
  let ready = null;
  let recycleBytes = Infinity;

  // Runs f once the engine is ready; its failure is this message's error (fatal when the
  // instance cannot go on: a trap leaves it unusable, and the pool replaces this worker).
  /** @param {Exclude<ToWorker, { type: 'init' }>} msg @param {(e: WasmEngine) => void} f */
  const answer = (msg, f) => {
    (ready ?? Promise.reject(new Error(`imdn: worker was sent ${msg.type} before init`)))
      .then(() => f(/** @type {WasmEngine} */ (engine)))
      .catch((e) => {
        const fatal = e instanceof WebAssembly.RuntimeError || !engine;
        port.post({ type: 'error', id: msg.id, message: message(e), fatal });
      });
  };

  /** @type {Map<number, UnitRequest>} units held until told go (or drop) */
  const held = new Map();
  /** @param {UnitRequest} msg */
  const runUnit = (msg) => {
    if (msg.stop && Atomics.load(/** @type {Int32Array} */ (msg.stop), 0) !== 0) {
      port.post({ type: 'error', id: msg.id, message: 'imdn: dropped', fatal: false });
      return;
    }
    answer(msg, (e) => {
      const data = e.run(msg.data);
      port.post({ type: 'unit-result', id: msg.id, data }, [data.buffer]);
    });
  };

  port.listen((msg) => {
    switch (msg.type) {
      case 'init':
        ready = (async () => {
          const threads = msg.threads ?? 1;
          recycleBytes = msg.recycleBytes ?? Infinity;
          const { factory, options } = await load(threads);
          const module = await instantiate(factory, msg.wasm, options);
          engine = new WasmEngine(module, new Uint8Array(msg.model), threads);
          return engine.info;
        })();
        ready.then(
          () => port.post({ type: 'ready' }),
          (e) => port.post({ type: 'init-error', message: message(e) }),
        );
        return;
      case 'unit':
        if (msg.held) held.set(msg.id, msg);
        else runUnit(msg);
        return;
      case 'go':
      case 'drop': {
        const unit = held.get(msg.id);
        held.delete(msg.id);
        if (unit && msg.type === 'go') runUnit(unit);
        else port.post({ type: 'error', id: msg.id, message: 'imdn: dropped', fatal: false });
        return;
      }
      case 'upscale':
        answer(msg, (e) => {
          /** @type {Parameters<WasmEngine['upscale']>[4]} */
          const options = { ...msg.options, progressPixels: msg.progress };
          if (msg.progress || msg.cancel) {
            // After each unit: report (with the tile's pixels), and stop if the call was cancelled.
            options.onProgress = (done, total, tile, pixels, tiles) => {
              if (msg.progress) port.post({ type: 'progress', id: msg.id, done, total, tiles, tile, pixels }, pixels ? [pixels.buffer] : []);
              return msg.cancel ? Atomics.load(/** @type {Int32Array} */ (msg.cancel), 0) !== 0 : false;
            };
          }
          const r = e.upscale(new Uint8Array(msg.pixels), msg.width, msg.height, msg.channels, options);
          // An instance that grew past recycleBytes asks to be replaced (memories never shrink).
          const recycle = e.memoryBytes > recycleBytes;
          // (data is null when the tiles' pixels went with the progress messages)
          port.post(
            {
              type: 'job-result',
              id: msg.id,
              width: r.width,
              height: r.height,
              channels: r.channels,
              data: r.data,
              memory: r.memory,
              recycle,
              memoryBytes: e.memoryBytes,
            },
            r.data ? [r.data.buffer] : [],
          );
        });
        return;
      default: {
        const unknown = /** @type {{ type?: unknown, id?: unknown }} */ (msg);
        port.post({ type: 'error', id: Number(unknown.id), message: `imdn: unknown message ${unknown.type}`, fatal: false });
      }
    }
  });
}

/**
 * The port of a browser worker (a dedicated Web Worker's global scope).
 * @returns {import('./protocol.js').Port}
 */
export const selfPort = () => ({
  post: (m, t) => self.postMessage(m, { transfer: t ?? [] }),
  listen: (f) => self.addEventListener('message', (e) => f(e.data)),
});
