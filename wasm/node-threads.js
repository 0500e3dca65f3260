// Under Node: the Web Worker that Emscripten's pthread code creates (new Worker(url)), made of a
// worker_threads Worker running wasm/pthread-node.js, which hosts dist/imdn-mt.worker.js.
// Browsers have Worker in workers already (nested workers); nothing here runs there.
import { availableParallelism, cpus } from 'node:os';
import { parentPort, Worker as NodeWorker } from 'node:worker_threads';

import createImdnModule from '../dist/imdn.js';
import createImdnThreadedModule from '../dist/imdn-mt.js';

const HOST = new URL('./pthread-node.js', import.meta.url);

/** @typedef {(this: WebLikeWorker, event: any) => void} Listener */

class WebLikeWorker {
  /** @param {string | URL} url */
  constructor(url) {
    /** @type {Listener | null} */
    this.onmessage = null;
    /** @type {Listener | null} */
    this.onerror = null;
    /** @type {{ message: Listener[], error: Listener[] }} */
    this.listeners = { message: [], error: [] };
    // The host's own flags (--expose-gc, --input-type, ...) are not for the package's threads.
    this.worker = new NodeWorker(HOST, { workerData: { url: String(url) }, execArgv: [] });
    this.worker.on('message', (data) => {
      // Loaded, a pthread never keeps the process alive by itself: its owner does (or has ended).
      if (data?.cmd === 'loaded') this.worker.unref();
      this.dispatch('message', { data });
    });
    this.worker.on('error', (e) => this.dispatch('error', e));
  }

  /** @param {'message' | 'error'} type @param {unknown} event */
  dispatch(type, event) {
    const own = type === 'message' ? this.onmessage : this.onerror;
    if (own) own.call(this, event);
    for (const f of this.listeners[type]) f.call(this, event);
  }

  /** @param {string} type @param {Listener} f */
  addEventListener(type, f) {
    if (type === 'message' || type === 'error') this.listeners[type].push(f);
  }

  /** @param {string} type @param {Listener} f */
  removeEventListener(type, f) {
    if (type === 'message' || type === 'error') this.listeners[type] = this.listeners[type].filter((g) => g !== f);
  }

  /** @param {unknown} message @param {any[]} [transfer] */
  postMessage(message, transfer) {
    this.worker.postMessage(message, transfer);
  }

  terminate() {
    this.worker.terminate();
  }
}

/**
 * Gives this thread a global Worker (once), and the navigator.hardwareConcurrency that the
 * module's sysconf() reads (Node 20 has no navigator). Only the package's own workers call this.
 */
export function installWorkerShim() {
  const g = /** @type {any} */ (globalThis); // Node's globals, given what a browser worker has
  if (typeof g.Worker !== 'function') g.Worker = WebLikeWorker;
  if (typeof g.navigator !== 'object') {
    g.navigator = { hardwareConcurrency: typeof availableParallelism === 'function' ? availableParallelism() : cpus().length };
  }
}

const PTHREAD_WORKER = new URL('../dist/imdn-mt.worker.js', import.meta.url);
const MAIN_SCRIPT = new URL('../dist/imdn-mt.js', import.meta.url);

/**
 * A pool worker's module factory for `threads` and its settings (see serve in worker-core.js).
 * @param {number} threads
 */
export async function loadForNode(threads) {
  if (threads === 1) return { factory: createImdnModule, options: {} };
  installWorkerShim();
  return {
    factory: createImdnThreadedModule,
    options: { imdnThreads: threads, pthreadWorker: PTHREAD_WORKER, mainScriptUrlOrBlob: MAIN_SCRIPT.href },
  };
}

/**
 * A pool worker's port to the pool (worker_threads' parentPort).
 * @returns {import('./protocol.js').Port}
 */
export const parentPortOf = () => ({
  post: (m, t) => parentPort?.postMessage(m, /** @type {any[]} */ (t)),
  listen: (f) => parentPort?.on('message', f),
});
