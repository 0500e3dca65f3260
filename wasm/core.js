// The platform-neutral part of the package: the Upscaler, its tiling and its worker pool.
// browser.js and node.js supply a `platform` (how to read bytes, spawn workers, count cores, turn
// their image types into pixels, the Emscripten factory of the main thread and where the .wasm
// files are) and export createUpscaler.
import { canShareMemory, compileWasm, convertWithModule, instantiate, WasmEngine } from './engine.js';
import { AUTHORS_BASE, MODELS } from './models.js';

export { KNOWN_MODELS } from './models.js';

/** Largest image accepted, in pixels, for input and output alike (as in the C++ core). */
export const MAX_PIXELS = 2 ** 28;

/**
 * The default memoryLimit under Node: bytes one image may hold in the engine at once (feature
 * maps, input planes, scratch, the output). 352 MiB: a 1024x1024 input at x4 fits with float16
 * maps and its blocks recomputed (streamed by one instance: 310 MiB; a pool's tiles of 160: 343),
 * and the whole process then peaks near 410 MiB with the 4096x4096 result. Float16 maps with the
 * blocks kept fit up to about 940x940, float32 ones up to about 650x650, recomputed blocks up to
 * about 1130x1130.
 */
export const DEFAULT_MEMORY_LIMIT = 352 * 2 ** 20;

/**
 * The default memoryLimit in browsers, where a page's renderer starts some 80 MiB above a Node
 * process and phones and tablets kill tabs not far above 512 MiB: 336 MiB, so that a 1024x1024
 * input at x4 fits (streamed by the threaded instance: 310 MiB; a pool's tiles of 128: 321) and
 * the renderer peaks under 500 MiB.
 */
export const BROWSER_MEMORY_LIMIT = 336 * 2 ** 20;

/**
 * The default recycleBytes: an instance whose WebAssembly memory grew past this (memories never
 * shrink) is replaced after the job that grew it, so that an idle upscaler holds little.
 */
export const RECYCLE_BYTES = 256 * 2 ** 20;

/**
 * A worker whose instance holds more than this after a job (float32 maps of a mid-sized image,
 * say: they live inside it) is replaced once it has been idle for IDLE_MS, so that an idle
 * upscaler holds little without a batch of such images paying a fresh worker each.
 */
export const IDLE_RECYCLE_BYTES = 128 * 2 ** 20;
const IDLE_MS = 2000;

/** @param {unknown} v */
function checkMemoryLimit(v) {
  if (v !== undefined && !(Number.isSafeInteger(v) && /** @type {number} */ (v) >= 2 ** 20)) {
    throw new RangeError(`imdn: memoryLimit must be a whole number of bytes, at least 1 MiB (1048576), got ${v}`);
  }
}

export class AbortError extends Error {}

function abortError(signal) {
  const reason = signal?.reason;
  if (typeof DOMException === 'function') {
    const e = new DOMException('imdn: upscale aborted', 'AbortError');
    if (reason !== undefined) Object.defineProperty(e, 'cause', { value: reason });
    return e;
  }
  const e = new AbortError('imdn: upscale aborted');
  e.name = 'AbortError';
  return e;
}

// ---------------------------------------------------------------------------------------------
// Pixels

/**
 * Checks a { data, width, height, channels? } image and returns it with channels filled in.
 * data: Uint8Array or Uint8ClampedArray of width*height*channels values (ImageData: RGBA).
 */
export function checkPixels(image) {
  if (!image || typeof image !== 'object') throw new TypeError('imdn: expected an image');
  const { data, width, height } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`imdn: image has an invalid size ${width}x${height}; width and height must be positive integers`);
  }
  if (width * height > MAX_PIXELS) throw new RangeError(`imdn: image of ${width}x${height} pixels is too large`);
  if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) {
    throw new TypeError('imdn: image data must be a Uint8Array or Uint8ClampedArray');
  }
  const channels = image.channels ?? data.length / (width * height);
  if (![1, 2, 3, 4].includes(channels) || data.length !== width * height * channels) {
    throw new RangeError(`imdn: image data has ${data.length} values, which does not fit ${width}x${height} with 1-4 channels`);
  }
  return { data, width, height, channels };
}

// ---------------------------------------------------------------------------------------------
// Worker pool

/**
 * The messages between this thread and a worker (worker-core.js), one union each way.
 * @typedef {{ x: number, y: number, width: number, height: number }} Rect
 * @typedef {{ type: 'init', wasm: WebAssembly.Module, model: ArrayBuffer, threads: number, recycleBytes?: number }
 *   | { type: 'upscale', id?: number, pixels: ArrayBuffer, width: number, height: number, channels: number,
 *       options: import('./engine.js').JobOptions, progress: boolean, cancel: Int32Array | null }
 *   | { type: 'unit', id?: number, data: Uint8Array, held?: boolean, stop?: Int32Array }
 *   | { type: 'go', id: number } | { type: 'drop', id: number }} ToWorker
 * @typedef {{ type: 'ready' } | { type: 'init-error', message: string }
 *   | { type: 'progress', id: number, done: number, total: number, tiles: number, tile: Rect | null,
 *       pixels: Uint8ClampedArray | Float32Array | null }
 *   | { type: 'result', id: number, width?: number, height?: number, channels?: number, data: any,
 *       memory?: import('./types.js').MemoryPlan, recycle?: boolean, memoryBytes?: number }
 *   | { type: 'error', id: number, message: string, fatal: boolean }} FromWorker
 * @typedef {{ build: () => { message: ToWorker, transfer?: Transferable[] }, resolve: (m: any) => void,
 *   reject: (e: Error) => void, signal?: AbortSignal, onProgress?: (m: any) => void,
 *   cancel?: () => boolean, owner?: object, short?: boolean, onAbort?: () => void, settled?: boolean }} Task
 */

// Workers started when first needed, up to `size`; each runs one message at a time, taken from one
// queue in order. A worker busy with a short task (`short`: a unit) is sent the next short one
// before it finishes, so that it never waits for this thread to gather its next inputs (this
// thread gathers and scatters every unit: without this, each of them left the workers idle).
export class Pool {
  constructor(spawnWorker, size, init) {
    this.spawnWorker = spawnWorker; // () => handle (see spawnWorker in browser.js and node-platform.js)
    this.size = size;
    this.init = init; // () => { message, transfer }: the init message (a fresh model copy each time)
    /** @type {{ handle: any, busy: { task: Task, id: number, held?: boolean }[], idle?: any }[]} */
    this.workers = [];
    /** @type {Task[]} */
    this.queue = [];
    this.nextId = 1;
    this.disposed = false;
    this.idleBytes = IDLE_RECYCLE_BYTES; // (Infinity: workers are never replaced for being idle)
  }

  /**
   * Runs one message on the next free worker; resolves with the worker's result message.
   * build() makes { message, transfer } when a worker is free (so that a unit's inputs are gathered
   * only then). onProgress(msg) gets the worker's progress messages. When the signal aborts while
   * the message runs, cancel() tells the worker to stop and returns true, or returns false (it
   * cannot be told: no shared memory) and the worker is terminated, so the CPU is free at once.
   * Tasks of different owners (calls) are taken in turn, so that concurrent calls share the pool.
   * @param {Task['build']} build
   * short: a task of one unit (no signal of its own: stopped with its owner), which may wait in a
   * busy worker behind another short one.
   * @param {{ signal?: AbortSignal, onProgress?: (m: any) => void, cancel?: () => boolean, owner?: object, short?: boolean }} [how]
   */
  run(build, { signal, onProgress, cancel, owner, short = false } = {}) {
    return new Promise((resolve, reject) => {
      if (this.disposed) return reject(new Error('imdn: the upscaler was disposed'));
      if (signal?.aborted) return reject(abortError(signal));
      /** @type {Task} */
      const task = { build, resolve, reject, signal, onProgress, cancel, owner, short };
      task.onAbort = () => this.abort(task);
      signal?.addEventListener('abort', task.onAbort, { once: true });
      this.queue.push(task);
      this.pump();
    });
  }

  /** @param {Task} task @param {Error | null} error */
  settle(task, error, value = undefined) {
    if (task.settled) return;
    task.settled = true;
    if (task.onAbort) task.signal?.removeEventListener('abort', task.onAbort);
    if (error) task.reject(error);
    else task.resolve(value);
  }

  /**
   * Fails every task of `owner` with `error`: queued ones are dropped, running ones finish in
   * their worker (a unit is short) and their results are ignored.
   */
  cancelOwner(owner, error) {
    const mine = this.queue.filter((t) => t.owner === owner);
    this.queue = this.queue.filter((t) => t.owner !== owner);
    for (const t of mine) this.settle(t, error);
    for (const w of this.workers) {
      for (const b of w.busy) if (b.task.owner === owner) this.settle(b.task, error);
    }
  }

  /** @param {Task} task */
  abort(task) {
    this.queue = this.queue.filter((t) => t !== task);
    const w = this.workers.find((x) => x.busy.some((b) => b.task === task));
    this.settle(task, abortError(task.signal));
    // Running: stopped at its next unit where it can be told so; terminated where it cannot.
    if (w && !(task.cancel?.() ?? true)) this.retire(w, null);
  }

  spawn() {
    const handle = this.spawnWorker();
    const w = { handle, busy: [], idle: undefined };
    handle.onMessage((/** @type {FromWorker} */ msg) => this.onMessage(w, msg));
    handle.onFailure((/** @type {string} */ message) => this.retire(w, `imdn: a worker crashed (${message}); it has been replaced`));
    const { message, transfer } = this.init();
    handle.post(message, transfer);
    this.workers.push(w);
    return w;
  }

  /** Starts the first worker now, idle (so that the first call finds it starting or ready). */
  warm() {
    if (!this.disposed && this.workers.length === 0) this.spawn().handle.setBusy(false);
  }

  pump() {
    while (!this.disposed && this.queue.length > 0) {
      // An idle worker, a new one, or one whose only task is short like the next one.
      const next = this.queue[0];
      let w = this.workers.find((x) => x.busy.length === 0);
      if (!w && this.workers.length < this.size) w = this.spawn();
      if (!w && next.short) w = this.workers.find((x) => x.busy.length === 1 && x.busy[0].task.short);
      if (!w) return;
      // The oldest task; its owner's other tasks then go behind everyone else's (round robin).
      const task = /** @type {Task} */ (this.queue.shift());
      if (task.owner) this.queue = [...this.queue.filter((t) => t.owner !== task.owner), ...this.queue.filter((t) => t.owner === task.owner)];
      let built;
      try {
        built = task.build();
      } catch (e) {
        this.settle(task, /** @type {Error} */ (e));
        continue;
      }
      const id = this.nextId++;
      // Behind another, a unit is held in the worker until that one's result is here (onMessage
      // then says go, or drop if its call stopped meanwhile): its bytes travel early, and a stop
      // costs at most the unit that was running. With a shared stop flag (`stop`: where memory
      // can be shared) it is not held: the worker reads the flag before it starts it.
      const held = w.busy.length > 0 && !built.message.stop;
      clearTimeout(w.idle);
      w.busy.push({ task, id, held });
      w.handle.setBusy(true);
      w.handle.post({ ...built.message, id, ...(held ? { held: true } : {}) }, built.transfer ?? []);
    }
  }

  /** @param {FromWorker} msg */
  onMessage(w, msg) {
    if (msg.type === 'ready') return;
    if (msg.type === 'init-error') {
      this.retire(w, `imdn: a worker could not start: ${msg.message}`);
      return;
    }
    const busy = w.busy.find((b) => b.id === msg.id);
    if (!busy) return;
    if (msg.type === 'progress') {
      if (busy.task.settled) return;
      try {
        busy.task.onProgress?.(msg);
      } catch (e) {
        this.settle(busy.task, /** @type {Error} */ (e));
      }
      return;
    }
    w.busy = w.busy.filter((b) => b !== busy);
    w.handle.setBusy(w.busy.length > 0);
    // The unit held in this worker behind the one that finished: started at once (before this
    // thread scatters), or dropped if its call was stopped meanwhile.
    const held = w.busy[0];
    if (held?.held && !(msg.type === 'error' && msg.fatal)) {
      held.held = false;
      w.handle.post(/** @type {ToWorker} */ (held.task.settled ? { type: 'drop', id: held.id } : { type: 'go', id: held.id }), []);
    }
    if (msg.type === 'result') {
      this.settle(busy.task, null, msg);
      // Its instance grew far beyond what most jobs need: a fresh worker next time; grew beyond
      // what an idle upscaler should hold: the same once it has stayed idle a while.
      if (msg.recycle && w.busy.length === 0) return this.retire(w, null);
      if ((msg.memoryBytes ?? 0) > this.idleBytes && w.busy.length === 0) {
        clearTimeout(w.idle);
        w.idle = setTimeout(() => {
          if (w.busy.length === 0) this.retire(w, null);
        }, IDLE_MS);
        w.idle.unref?.(); // (Node: an idle upscaler must not keep the process alive)
      }
    } else {
      this.settle(busy.task, new Error(msg.message));
      if (msg.fatal) this.retire(w, null);
    }
    this.pump();
  }

  // Removes a worker. With a message (it crashed), the task it was running fails with it; without
  // (its task was aborted or failed, and is settled) nothing does. Tasks waiting behind go back
  // to the head of the queue.
  retire(w, message) {
    if (!this.workers.includes(w)) return;
    this.workers = this.workers.filter((x) => x !== w);
    clearTimeout(w.idle);
    const busy = w.busy;
    w.busy = [];
    w.handle.terminate();
    if (message && busy.length > 0) this.settle(busy[0].task, new Error(message));
    this.queue.unshift(...busy.map((b) => b.task).filter((t) => !t.settled));
    this.pump();
  }

  dispose() {
    this.disposed = true;
    const gone = new Error('imdn: the upscaler was disposed');
    for (const w of this.workers) {
      clearTimeout(w.idle);
      w.handle.terminate();
      for (const b of w.busy) this.settle(b.task, gone);
    }
    for (const t of this.queue) this.settle(t, gone);
    this.workers = [];
    this.queue = [];
  }
}

// ---------------------------------------------------------------------------------------------
// The upscaler

async function readModel(platform, model, { modelBaseUrl, onDownloadProgress }) {
  if (model instanceof ArrayBuffer) return new Uint8Array(model.slice(0));
  if (ArrayBuffer.isView(model)) return new Uint8Array(model.buffer.slice(model.byteOffset, model.byteOffset + model.byteLength));
  if (typeof model === 'string' && Object.hasOwn(MODELS, model)) {
    // A name: the authors' checkpoint, from their repository unless the caller says where.
    const m = MODELS[model];
    const base = modelBaseUrl ?? platform.defaultModelBase?.() ?? AUTHORS_BASE;
    const url = platform.join(base, m.checkpoint);
    const progress = onDownloadProgress && safeCallback(onDownloadProgress, 'onDownloadProgress');
    // The platform reads or downloads the file (caching only what matches) and says its sha256.
    const { bytes, digest } = await platform.fetchModel(url, { ...m, name: model, onProgress: progress });
    if (digest !== m.sha256) {
      throw new Error(`imdn: ${url} is not the authors' ${m.checkpoint} (sha256 ${digest}, expected ${m.sha256}); refusing it`);
    }
    return bytes;
  }
  if (typeof model === 'string' || model instanceof URL) return new Uint8Array(await platform.readBytes(model));
  throw new TypeError(`imdn: model must be a URL, a path (Node), bytes, or a name (${Object.keys(MODELS).join(', ')})`);
}

// A caller's callback, called so that whatever it does (throw, or not be a function at all)
// comes back as an imdn: error of the call that uses it, never as an uncaught exception.
function safeCallback(f, name) {
  if (typeof f !== 'function') throw new TypeError(`imdn: ${name} must be a function, got ${typeof f}`);
  return (...args) => {
    try {
      f(...args);
    } catch (e) {
      throw new Error(`imdn: ${name} threw: ${e?.message ?? e}`);
    }
  };
}

/**
 * Fetches a URL's bytes, reporting { loaded, total, url } (total: null when the server does not
 * say) as they arrive. Used by both platforms for remote models.
 */
export async function download(url, onProgress) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new Error(`imdn: cannot download ${url}: ${e.cause?.message ?? e.message}`);
  }
  if (!response.ok) throw new Error(`imdn: cannot download ${url}: HTTP ${response.status}`);
  const total = Number(response.headers.get('content-length')) || null;
  if (!onProgress || !response.body) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  onProgress({ loaded, total, url: String(url) });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.length;
      onProgress({ loaded, total, url: String(url) });
    }
  } catch (e) {
    reader.cancel().catch(() => {});
    throw e.message?.startsWith('imdn:') ? e : new Error(`imdn: download of ${url} failed: ${e.message}`);
  }
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Lower-case hex SHA-256 of bytes: WebCrypto where there is one, else plain JavaScript. */
export async function sha256(bytes) {
  const subtle = globalThis.crypto?.subtle;
  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
  if (subtle) return hex(await subtle.digest('SHA-256', bytes));
  return hex(sha256js(bytes)); // insecure browser contexts have no crypto.subtle
}

function sha256js(data) {
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74,
    0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d,
    0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e,
    0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5,
    0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const n = data.length;
  const padded = new Uint8Array(Math.ceil((n + 9) / 64) * 64);
  padded.set(data);
  padded[n] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(n / 2 ** 29));
  view.setUint32(padded.length - 4, (n * 8) >>> 0);
  const w = new Uint32Array(64);
  const rot = (x, k) => (x >>> k) | (x << (32 - k));
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + 4 * i);
    for (let i = 16; i < 64; i++) {
      const s0 = rot(w[i - 15], 7) ^ rot(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rot(w[i - 2], 17) ^ rot(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    let [a, b, c, d, e, f, g, k] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (k + (rot(e, 6) ^ rot(e, 11) ^ rot(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rot(a, 2) ^ rot(a, 13) ^ rot(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      k = g;
      g = f;
      f = e;
      e = (d + t1) >>> 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) >>> 0;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
  }
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) new DataView(out.buffer).setUint32(4 * i, h[i]);
  return out.buffer;
}

/**
 * The engine behind createUpscaler, for a given platform. See index.d.ts for the options.
 */
export async function createUpscalerWith(platform, options) {
  if (options === null || typeof options !== 'object') throw new TypeError('imdn: createUpscaler needs an options object: { model }');
  const {
    model,
    modelBaseUrl,
    onDownloadProgress,
    tileSize,
    exact = true,
    wasm,
    wasmThreaded,
    threads,
    baseUrl,
    memoryLimit = platform.memoryLimit ?? DEFAULT_MEMORY_LIMIT,
    recycleBytes = RECYCLE_BYTES,
  } = options;
  if (model === undefined) throw new TypeError('imdn: createUpscaler needs { model }');
  // The cores this machine says it has; where that is a guess (WebKit: browser.js) the default is
  // measured while the module and the model load.
  const cores = platform.cores();
  const asked = options.workers;
  if (asked !== undefined && !(Number.isInteger(asked) && asked >= 1)) throw new RangeError(`imdn: workers must be a positive integer, got ${asked}`);
  const workers = asked ?? cores;
  // More workers than cores only adds memory and start-up (each is an instance or a thread).
  const maxWorkers = Math.min(64, Math.max(4, 2 * cores));
  if (workers > maxWorkers) {
    throw new RangeError(`imdn: workers: ${workers} is more than this machine can use (${cores} cores; at most ${maxWorkers})`);
  }
  if (tileSize !== undefined && (!Number.isInteger(tileSize) || tileSize < 16)) {
    throw new RangeError(`imdn: tileSize must be an integer of at least 16, got ${tileSize}`);
  }
  if (threads !== undefined && typeof threads !== 'boolean') throw new TypeError(`imdn: threads must be true or false, got ${threads}`);
  checkMemoryLimit(memoryLimit);
  if (!(typeof recycleBytes === 'number' && recycleBytes >= 0))
    throw new RangeError(`imdn: recycleBytes must be a number of bytes (Infinity: never), got ${recycleBytes}`);
  if (threads === true && !canShareMemory()) {
    throw new Error('imdn: threads need SharedArrayBuffer: serve the page cross-origin isolated (COOP/COEP headers), or run under Node');
  }
  // Several cores as threads of one instance (the threaded module) wherever memory can be shared;
  // the threaded module not loading (a bundle without it, say) falls back to one worker per core,
  // unless threads were asked for explicitly.
  const wantThreads = workers > 1 && (threads ?? canShareMemory());
  if (baseUrl !== undefined && typeof baseUrl !== 'string' && !(baseUrl instanceof URL)) {
    throw new TypeError(`imdn: baseUrl must be a URL or a string, got ${typeof baseUrl}`);
  }
  const files = platform.files(baseUrl);
  const [wasmModule, modelBytes, threadedModule, measured] = await Promise.all([
    compileWasm(wasm ?? files.wasm, (src) => platform.readBytes(src)),
    readModel(platform, model, { modelBaseUrl, onDownloadProgress }),
    wantThreads
      ? compileWasm(wasmThreaded ?? files.wasmThreaded, (src) => platform.readBytes(src)).catch((e) => {
          if (threads === true) throw e;
          return null;
        })
      : null,
    asked ?? platform.measureCores?.() ?? workers,
  ]);
  // The main thread keeps one engine: it validates the model here (so a bad file fails
  // createUpscaler, not the first upscale) and plans the jobs whose units the pool runs.
  const main = await instantiate(platform.factory, wasmModule);
  const engine = new WasmEngine(main, modelBytes);
  // Workers get the model in our own format: a checkpoint is read once, here (the threaded module
  // has no checkpoint reader).
  const own = isImdn(modelBytes) ? modelBytes : convertWithModule(main, modelBytes, false).data;
  return new Upscaler(platform, wasmModule, main, engine, own, {
    workers: measured,
    tileSize,
    exact,
    memoryLimit,
    recycleBytes,
    threadedModule: measured > 1 ? threadedModule : null,
    files,
  });
}

const isImdn = (b) => b.length >= 8 && String.fromCharCode(...b.subarray(0, 8)) === 'IMDNWASM';

// Copies a w x h block of pixels (RGBA bytes, or RGB floats) into the result at `rect`.
function paste(result, rect, pixels) {
  const C = pixels instanceof Float32Array ? 3 : 4;
  const row = rect.width * C;
  for (let y = 0; y < rect.height; y++) result.data.set(pixels.subarray(y * row, (y + 1) * row), ((rect.y + y) * result.width + rect.x) * C);
}

export class Upscaler {
  constructor(platform, wasmModule, mainModule, engine, modelBytes, { workers, tileSize, exact, memoryLimit, recycleBytes, threadedModule, files }) {
    this.platform = platform;
    this.wasmModule = wasmModule;
    this.modelBytes = modelBytes;
    this.mainModule = mainModule;
    this.engine = engine;
    this.info = engine.info;
    this.exact = exact;
    this.memoryLimit = memoryLimit;
    this.recycleBytes = recycleBytes;
    this.active = 0; // upscale calls in flight (the main instance is recycled only between them)
    // Threaded: one worker whose instance runs every operator on `workers` threads. Otherwise
    // `workers` single-threaded workers.
    this.threads = threadedModule ? workers : 1;
    this.workers = threadedModule ? 1 : workers;
    // One worker runs whole jobs (its instance tiles the image itself, docs/plan.md); a pool of them
    // runs the units of a job this thread plans, phase by phase.
    // Tiles trade scratch memory for halos, which Winograd F(4x4) makes wide (13 px a side for a
    // block): 256 by default (x4 on 256x256: one instance 1.44x and two workers 1.20x faster than
    // 128). A pool still gets at least one tile per worker (minTiles), split smaller if need be.
    this.tileSize = tileSize ?? 256;
    const threaded = this.threads > 1;
    this.pool = new Pool(
      () => platform.spawnWorker(threaded ? files.workerThreaded : files.worker, threaded),
      this.workers,
      () => {
        const model = modelBytes.slice().buffer;
        return {
          message: { type: 'init', wasm: threadedModule ?? wasmModule, model, threads: this.threads, recycleBytes: this.recycleBytes },
          transfer: [model],
        };
      },
    );
    // Its first worker (a thread of its own, or one per core) starts with the upscaler, beside
    // the caller's next steps, instead of on the first call: what the upscaler holds ready for
    // work from the start, and the first result sooner.
    this.pool.idleBytes = recycleBytes === Infinity ? Infinity : IDLE_RECYCLE_BYTES;
    this.pool.warm();
  }

  /**
   * Output width and height for an input of width x height.
   * @param {number} width @param {number} height
   * @param {{ targetWidth?: number, targetHeight?: number }} [target]
   */
  outputSize(width, height, { targetWidth, targetHeight } = {}) {
    if (targetWidth || targetHeight) return { width: targetWidth, height: targetHeight };
    return { width: width * this.info.scale, height: height * this.info.scale };
  }

  /**
   * What one image would hold in the engine at once, and how it would be planned; see types.d.ts.
   * @param {number} width @param {number} height
   * @param {import('./types.js').MemoryOptions} [options]
   * @returns {import('./types.js').MemoryPlan}
   */
  memoryNeeded(width, height, options = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('imdn: memoryNeeded options must be an object');
    for (const v of [width, height]) {
      if (!Number.isInteger(v) || v <= 0) throw new RangeError(`imdn: memoryNeeded needs a positive integer width and height, got ${width}x${height}`);
    }
    const { channels = 3 } = options;
    if (![1, 2, 3, 4].includes(channels)) throw new RangeError(`imdn: channels must be 1 to 4, got ${channels}`);
    if (this.pool.disposed) throw new Error('imdn: the upscaler was disposed');
    return this.engine.estimate(width, height, channels, this.jobOptions(options));
  }

  // The options of a Job (wasm/bindings.cpp) for this call, checked.
  jobOptions(options) {
    const { raw = false, targetWidth, targetHeight, tileSize = this.tileSize, exact = this.exact, memoryLimit = this.memoryLimit } = options;
    if (!Number.isInteger(tileSize) || tileSize < 16) throw new RangeError(`imdn: tileSize must be an integer of at least 16, got ${tileSize}`);
    if (typeof exact !== 'boolean') throw new TypeError(`imdn: exact must be true or false, got ${exact}`);
    checkMemoryLimit(memoryLimit);
    // (One worker runs the whole job in its instance, where its blocks may stream; a
    // pool's units are gathered here and need at least one tile per worker.)
    return { raw, tileSize, exact, targetWidth, targetHeight, memoryLimit, ...(this.workers > 1 ? { minTiles: this.workers } : { executor: 'instance' }) };
  }

  /**
   * Upscales an image; see types.d.ts. Resolves to { width, height, data } with RGBA bytes, or,
   * with { raw: true }, RGB floats of the network's unclamped output.
   * @param {any} input what the platform's toPixels takes
   * @param {import('./types.js').UpscaleOptions} [options]
   */
  async upscale(input, options = {}) {
    if (options === null || typeof options !== 'object')
      throw new TypeError(`imdn: upscale options must be an object, got ${options === null ? 'null' : typeof options}`);
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
      throw new TypeError(`imdn: onProgress must be a function, got ${typeof options.onProgress}`);
    }
    if (options.maxInputPixels !== undefined && !(Number.isInteger(options.maxInputPixels) && options.maxInputPixels > 0)) {
      throw new RangeError(`imdn: maxInputPixels must be a positive integer, got ${options.maxInputPixels}`);
    }
    const sig = options.signal;
    if (sig !== undefined && !(sig && typeof sig === 'object' && typeof sig.aborted === 'boolean' && typeof sig.addEventListener === 'function')) {
      throw new TypeError('imdn: signal must be an AbortSignal (new AbortController().signal)');
    }
    const { onProgress: userProgress, signal, raw = false, targetWidth, targetHeight } = options;
    if (this.pool.disposed) throw new Error('imdn: the upscaler was disposed');
    if (signal?.aborted) throw abortError(signal);
    const jobOptions = this.jobOptions(options);
    const target = targetWidth !== undefined || targetHeight !== undefined;
    if (target && this.info.arch !== 'IMDN_AS') {
      throw new Error(`imdn: a target size needs the IMDN_AS model; ${this.info.arch} upscales by x${this.info.scale}`);
    }
    if (target) {
      for (const v of [targetWidth, targetHeight]) {
        if (!Number.isInteger(v) || v <= 0) throw new RangeError('imdn: targetWidth and targetHeight must both be positive integers');
      }
      if (targetWidth * targetHeight > MAX_PIXELS) throw new RangeError(`imdn: output of ${targetWidth}x${targetHeight} is too large`);
    }
    this.active++;
    try {
      return await this.upscaleImage(input, options, jobOptions);
    } finally {
      this.active--;
      this.recycleMain();
    }
  }

  /** @param {any} input @param {import('./types.js').UpscaleOptions} options @param {any} jobOptions */
  async upscaleImage(input, options, jobOptions) {
    const { onProgress: userProgress, signal, raw = false, targetWidth, targetHeight } = options;
    const image = checkPixels(await this.platform.toPixels(input, this.mainModule, { maxInputPixels: options.maxInputPixels }));
    if (signal?.aborted) throw abortError(signal);
    const out = this.outputSize(image.width, image.height, { targetWidth, targetHeight });
    if (out.width * out.height > MAX_PIXELS) throw new RangeError(`imdn: output of ${out.width}x${out.height} is too large`);
    // Refused before anything image-sized is allocated or sent, saying what it would need.
    const plan = this.engine.estimate(image.width, image.height, image.channels, jobOptions);
    if (!plan.fits) {
      let also = '';
      if (jobOptions.exact && this.info.arch === 'IMDN') {
        const whole = this.engine.estimate(image.width, image.height, image.channels, { ...jobOptions, exact: false, memoryLimit: 2 ** 52 });
        also = `; with exact: false (whole-network tiles, approximate pixels) it needs ${Math.ceil(whole.bytes / 2 ** 20)} MiB`;
      }
      throw new RangeError(`imdn: ${plan.why}: raise memoryLimit${also}`);
    }

    // The result: filled tile by tile when the caller watches progress (it sees it grow), else
    // the job's output as it comes.
    /** @type {import('./types.js').UpscaleResult | import('./types.js').RawUpscaleResult} */
    const result = raw
      ? { width: out.width, height: out.height, channels: 3, data: new Float32Array(0) }
      : { width: out.width, height: out.height, data: new Uint8ClampedArray(0) };
    if (userProgress) result.data = raw ? new Float32Array(out.width * out.height * 3) : new Uint8ClampedArray(out.width * out.height * 4);
    let tilesDone = 0;
    // The caller's callback: whatever it throws fails this call (an imdn: error), never the host.
    const report = (done, total, tile, tiles) => {
      if (tile) tilesDone++;
      try {
        userProgress?.({ done, total, tile, tiles: { done: tilesDone, total: tiles }, output: result });
      } catch (e) {
        throw new Error(`imdn: onProgress threw: ${e?.message ?? e}`);
      }
    };
    // Stops this call's queued and running work when it fails, or when the caller aborts.
    const stop = new AbortController();
    const onAbort = () => stop.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const run = this.workers === 1 ? this.whole(image, jobOptions, result, report, stop.signal) : this.units(image, jobOptions, result, report, stop.signal);
      await run.catch((e) => {
        stop.abort(e);
        throw signal?.aborted ? abortError(signal) : e;
      });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    return result;
  }

  // The whole job in one worker's instance; progress (and the finished tiles' pixels, when the
  // caller watches) come back as it goes.
  async whole(image, jobOptions, result, report, signal) {
    const painting = result.data.length > 0;
    const cancel = canShareMemory() ? new Int32Array(new SharedArrayBuffer(4)) : null;
    const msg = await this.pool.run(
      () => {
        const pixels = image.data.slice().buffer;
        const { width, height, channels } = image;
        return { message: { type: 'upscale', pixels, width, height, channels, options: jobOptions, progress: painting, cancel }, transfer: [pixels] };
      },
      {
        signal,
        owner: result,
        onProgress: (m) => {
          if (m.tile && m.pixels) paste(result, m.tile, m.pixels);
          report(m.done, m.total, m.tile, m.tiles);
        },
        cancel: () => {
          if (cancel) Atomics.store(cancel, 0, 1);
          return cancel !== null;
        },
      },
    );
    if (!painting) result.data = msg.data;
  }

  // A job planned here, its units run by the pool, phase by phase (a barrier between phases).
  async units(image, jobOptions, result, report, signal) {
    const painting = result.data.length > 0;
    const job = this.engine.job(image.data, image.width, image.height, image.channels, jobOptions);
    // One listener for all the job's units (not one per unit): a stop fails those not yet done.
    // Where memory can be shared, one flag tells the workers to skip this job's units.
    const stop = canShareMemory() ? new Int32Array(new SharedArrayBuffer(4)) : undefined;
    const onStop = () => {
      if (stop) Atomics.store(stop, 0, 1);
      this.pool.cancelOwner(job, new Error('imdn: stopped'));
    };
    signal.addEventListener('abort', onStop, { once: true });
    // Buffers back from the workers, reused for the next units' inputs (and the workers write
    // their results over their inputs): fresh large buffers cost page faults and zeroing, several
    // times the copy itself.
    /** @type {ArrayBuffer[]} */
    const spare = [];
    try {
      const { phases, units, tiles } = job.plan;
      let done = 0;
      let first = 0;
      for (const { units: count, here } of phases) {
        if (signal.aborted) throw new Error('imdn: stopped');
        const runs = [];
        // Pointwise phases: this thread's share of the chunks runs in place in its own instance
        // (no copies), a chunk at a time, yielding between chunks so that the page stays
        // responsive and a stop is heard; the workers take the rest.
        const mine = here ? Math.min(count, Math.ceil(count / (this.workers + 1))) : 0;
        if (mine > 0) {
          runs.push(
            (async () => {
              for (let i = first + count - mine; i < first + count; i++) {
                await new Promise((r) => setTimeout(r, 0));
                if (signal.aborted) return;
                report(++done, units, job.scatter(i), tiles);
              }
            })(),
          );
        }
        for (let i = first; i < first + count - mine; i++) {
          const build = () => {
            const buffer = spare.pop();
            const data = job.gather(i, buffer && new Uint8Array(buffer));
            return { message: /** @type {ToWorker} */ ({ type: 'unit', data, stop }), transfer: [data.buffer] };
          };
          runs.push(
            this.pool.run(build, { owner: job, short: true }).then((msg) => {
              if (signal.aborted) return;
              const tile = job.scatter(i, msg.data);
              if (spare.length <= 2 * this.workers) spare.push(msg.data.buffer);
              if (tile && painting) paste(result, tile, job.result(tile).data);
              report(++done, units, tile, tiles);
            }),
          );
        }
        await Promise.all(runs);
        first += count;
      }
      if (!painting) result.data = job.result().data;
    } finally {
      signal.removeEventListener('abort', onStop);
      if (stop) Atomics.store(stop, 0, 1);
      this.pool.cancelOwner(job, new Error('imdn: stopped'));
      job.dispose();
    }
  }

  // After a call, with none in flight: a main instance that grew past recycleBytes (a pool's
  // maps, a large decode) is replaced by a fresh one from the compiled module.
  recycleMain() {
    if (this.active > 0 || this.recycling || this.pool.disposed || this.engine.memoryBytes <= this.recycleBytes) return;
    this.recycling = (async () => {
      try {
        const main = await instantiate(this.platform.factory, this.wasmModule);
        const engine = new WasmEngine(main, this.modelBytes);
        if (this.pool.disposed) return engine.dispose();
        const old = this.engine;
        this.mainModule = main;
        this.engine = engine;
        // (a call that began meanwhile still holds the old one: it is dropped, not deleted)
        if (this.active === 0) old.dispose();
      } catch {
        // keep the old instance
      } finally {
        this.recycling = null;
      }
    })();
  }

  /** Stops the workers; pending calls reject. The upscaler cannot be used afterwards. */
  dispose() {
    this.pool.dispose();
    this.engine.dispose();
  }
}
