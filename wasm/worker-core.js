// The message loop of one worker of the pool: a WebAssembly instance that upscales the tiles it is
// sent, single-threaded, or (threads > 1) the threaded module with threads - 1 pthread workers of
// its own. The entry files give it a port and the module factories their context can load:
// worker.js (browser, single-threaded), worker-mt.js (browser, threaded), worker-node.js (Node).
// Nothing here awaits at the top level or imports by condition, so bundlers can emit any of them
// as a classic (IIFE) or module worker.
//
// Messages in:  { type: 'init', wasm: WebAssembly.Module, model: ArrayBuffer, threads }
//               { type: 'tile', id, pixels: ArrayBuffer, width, height, channels, options,
//                 progress: bool, cancel: Int32Array on a SharedArrayBuffer (non-zero: stop) }
//               { type: 'stage', id, op, args }   (a stage of exact tiling, see core.js)
// Messages out: { type: 'ready', info } | { type: 'init-error', message }
//               { type: 'progress', id, done, total }
//               { type: 'result', id, ... }       (typed arrays transferred)
//               { type: 'tile-error', id, message, fatal }
import { instantiate, WasmEngine } from './engine.js';

/**
 * port: { post(message, transfer), listen(f) }. load(threads) resolves to { factory, options }:
 * the Emscripten factory for that many threads and the Module settings it needs.
 */
export function serve(port, load) {
  let engine = null;
  let ready = null;

  port.listen((msg) => {
    if (msg.type === 'init') {
      ready = (async () => {
        const threads = msg.threads ?? 1;
        const { factory, options } = await load(threads);
        const module = await instantiate(factory, msg.wasm, options);
        engine = new WasmEngine(module, new Uint8Array(msg.model), threads);
        return engine.info;
      })();
      ready.then(
        (info) => port.post({ type: 'ready', info }),
        (e) => port.post({ type: 'init-error', message: e.message }),
      );
      return;
    }
    if (msg.type === 'stage') {
      (ready ?? Promise.reject(new Error('imdn: worker was sent a stage before init')))
        .then(() => {
          const r = engine.stage(msg.op, msg.args);
          const out = { type: 'result', id: msg.id };
          const transfer = [];
          for (const [k, v] of Object.entries(r)) {
            out[k] = v;
            if (ArrayBuffer.isView(v)) transfer.push(v.buffer);
          }
          port.post(out, transfer);
        })
        .catch((e) => {
          const fatal = e instanceof WebAssembly.RuntimeError || !engine;
          port.post({ type: 'tile-error', id: msg.id, message: e.message, fatal });
        });
      return;
    }
    if (msg.type === 'tile') {
      (ready ?? Promise.reject(new Error('imdn: worker was sent a tile before init')))
        .then(() => {
          if (msg.options?._testCrash) {
            // Only the test suite sends this: an uncaught error, as a real crash would be.
            setTimeout(() => {
              throw new Error('test crash');
            });
            return;
          }
          const { _testCrash, ...options } = msg.options ?? {};
          if (msg.progress || msg.cancel) {
            // Between units of work (tiles of stages): report, and stop if the call was cancelled.
            options.onProgress = (done, total) => {
              if (msg.progress) port.post({ type: 'progress', id: msg.id, done, total });
              return msg.cancel ? Atomics.load(msg.cancel, 0) !== 0 : false;
            };
          }
          const r = engine.upscale(new Uint8Array(msg.pixels), msg.width, msg.height, msg.channels, options);
          const data = r.data;
          port.post(
            { type: 'result', id: msg.id, width: r.width, height: r.height, channels: r.channels, data: data.buffer },
            [data.buffer],
          );
        })
        .catch((e) => {
          // A trap leaves the instance unusable: say so, and the pool replaces this worker.
          const fatal = e instanceof WebAssembly.RuntimeError || !engine;
          port.post({ type: 'tile-error', id: msg.id, message: e.message, fatal });
        });
    }
  });
}

/** The port of a browser worker (a dedicated Web Worker's global scope). */
export const selfPort = () => ({
  post: (m, t) => self.postMessage(m, t),
  listen: (f) => self.addEventListener('message', (e) => f(e.data)),
});
