// The message loop of one worker of the pool: a WebAssembly instance that runs what it is sent,
// single-threaded, or (threads > 1) the threaded module with threads - 1 pthread workers of its
// own. The entry files give it a port and the module factories their context can load: worker.js
// (browser, single-threaded), worker-mt.js (browser, threaded), worker-node.js (Node). Nothing here
// awaits at the top level or imports by condition, so bundlers can emit any of them as a classic
// (IIFE) or module worker.
//
// The messages (one typed union each way) are declared in core.js (ToWorker, FromWorker):
//   init     the module and the model                    -> ready | init-error
//   upscale  a whole image, planned and run here          -> progress* then result | error
//            (result.recycle: this instance grew past init's recycleBytes; replace the worker;
//            result.memoryBytes: its memory now)
//   unit     one unit of a job planned elsewhere (bytes)  -> result { data } | error
//            (`held`: sent while another runs here; kept until go or drop. `stop`: a shared
//            flag; set, the unit is dropped unrun)
//   go       run the held unit `id`                       -> as unit
//   drop     forget the held unit `id`                    -> error { message: dropped }
import { instantiate, WasmEngine } from './engine.js';

/**
 * port: { post(message, transfer), listen(f) }. load(threads) resolves to { factory, options }:
 * the Emscripten factory for that many threads and the Module settings it needs.
 * @param {{ post: (m: any, t?: Transferable[]) => void, listen: (f: (m: any) => void) => void }} port
 * @param {(threads: number) => Promise<{ factory: any, options?: object }>} load
 */
export function serve(port, load) {
  /** @type {WasmEngine | null} */
  let engine = null;
  /** @type {Promise<any> | null} */
  let ready = null;
  let recycleBytes = Infinity;

  // Runs f once the engine is ready; its failure is this message's error (fatal when the
  // instance cannot go on: a trap leaves it unusable, and the pool replaces this worker).
  const answer = (msg, f) => {
    (ready ?? Promise.reject(new Error(`imdn: worker was sent ${msg.type} before init`)))
      .then(() => f(/** @type {WasmEngine} */ (engine)))
      .catch((e) => {
        const fatal = e instanceof WebAssembly.RuntimeError || !engine;
        port.post({ type: 'error', id: msg.id, message: e.message, fatal });
      });
  };

  /** @type {Map<number, any>} units held until told go (or drop) */
  const held = new Map();
  const runUnit = (msg) => {
    if (msg.stop && Atomics.load(/** @type {Int32Array} */ (msg.stop), 0) !== 0) {
      port.post({ type: 'error', id: msg.id, message: 'imdn: dropped', fatal: false });
      return;
    }
    answer(msg, (e) => {
      const data = e.run(msg.data);
      port.post({ type: 'result', id: msg.id, data }, [data.buffer]);
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
          (e) => port.post({ type: 'init-error', message: e.message }),
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
              type: 'result',
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
      default:
        port.post({ type: 'error', id: msg.id, message: `imdn: unknown message ${msg.type}`, fatal: false });
    }
  });
}

/** The port of a browser worker (a dedicated Web Worker's global scope). */
export const selfPort = () => ({
  post: (m, t) => self.postMessage(m, t),
  listen: (f) => self.addEventListener('message', (e) => f(e.data)),
});
