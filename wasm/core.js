// The platform-neutral part of the package: the Upscaler, its tiling and its worker pool.
// browser.js and node.js supply a `platform` (how to read bytes, spawn workers, count cores, turn
// their image types into pixels, the Emscripten factory of the main thread and where the .wasm
// files are) and export createUpscaler.
import { canShareMemory, compileWasm, convertWithModule, instantiate, message, WasmEngine } from './engine.js';
import { readModel } from './model-source.js';
import { AbortError, abortError, IDLE_RECYCLE_BYTES, Pool } from './pool.js';

export { KNOWN_MODELS } from './models.js';
export { download, sha256 } from './model-source.js';
export { AbortError, IDLE_RECYCLE_BYTES, Pool };

/** Largest image accepted, in pixels, for input and output alike (as in the C++ core). */
export const MAX_PIXELS = 2 ** 28;

/**
 * The default memoryLimit under Node: bytes one image may hold in the engine at once (feature
 * maps, input planes, scratch, the output), chosen so that a 1024x1024 input at x4 fits and the
 * whole process stays under 512 MiB (README, Memory: what fits and the peaks, as measured by
 * tools/bench/memory.mjs).
 */
export const DEFAULT_MEMORY_LIMIT = 352 * 2 ** 20;

/**
 * The default memoryLimit in browsers, a little below Node's: a page's renderer starts higher, and
 * phones and tablets kill tabs not far above 512 MiB; a 1024x1024 input at x4 still fits (README,
 * Memory).
 */
export const BROWSER_MEMORY_LIMIT = 336 * 2 ** 20;

/**
 * The default recycleBytes: an instance whose WebAssembly memory grew past this (memories never
 * shrink) is replaced after the job that grew it, so that an idle upscaler holds little.
 */
export const RECYCLE_BYTES = 256 * 2 ** 20;

/** @param {unknown} v */
function checkTileSize(v) {
  if (v !== undefined && !(Number.isInteger(v) && /** @type {number} */ (v) >= 16)) {
    throw new RangeError(`imdn: tileSize must be an integer of at least 16, got ${v}`);
  }
}

/** @param {unknown} v */
function checkMemoryLimit(v) {
  if (v !== undefined && !(Number.isSafeInteger(v) && /** @type {number} */ (v) >= 2 ** 20)) {
    throw new RangeError(`imdn: memoryLimit must be a whole number of bytes, at least 1 MiB (1048576), got ${v}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Pixels

/**
 * Whether x is pixels already ({ data, width, height }, ImageData), not something to decode.
 * @param {unknown} x @returns {x is import('./platform.js').Pixels}
 */
export function isPixels(x) {
  return !!x && typeof x === 'object' && 'data' in x && 'width' in x && 'height' in x && ArrayBuffer.isView(x.data);
}

/**
 * Checks a { data, width, height, channels? } image and returns it with channels filled in.
 * data: Uint8Array or Uint8ClampedArray of width*height*channels values (ImageData: RGBA).
 * @param {any} image
 * @returns {Required<import('./platform.js').Pixels>}
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

/**
 * The channels an image is planned with: an alpha channel that is 255 everywhere (a screenshot's,
 * a canvas's) is not planned, as the engine runs such an image as RGB (or grey).
 * @param {Required<import('./platform.js').Pixels>} image
 */
export function planChannels({ data, channels }) {
  if (channels !== 2 && channels !== 4) return channels;
  for (let i = channels - 1; i < data.length; i += channels) if (data[i] !== 255) return channels;
  return channels - 1;
}

// ---------------------------------------------------------------------------------------------
// The upscaler

/**
 * @param {import('./platform.js').Platform} platform
 * @param {import('./types.js').UpscalerOptions} options
 * @returns {Promise<Upscaler>}
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
  checkTileSize(tileSize);
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

const isImdn = (/** @type {Uint8Array} */ b) => b.length >= 8 && String.fromCharCode(...b.subarray(0, 8)) === 'IMDNWASM';

/**
 * Copies a w x h block of pixels (RGBA bytes, or RGB floats) into the result at `rect`.
 * @param {Result} result @param {Rect} rect @param {Uint8ClampedArray | Float32Array} pixels
 */
function paste(result, rect, pixels) {
  const C = pixels instanceof Float32Array ? 3 : 4;
  const row = rect.width * C;
  for (let y = 0; y < rect.height; y++) result.data.set(pixels.subarray(y * row, (y + 1) * row), ((rect.y + y) * result.width + rect.x) * C);
}

/**
 * @typedef {import('./types.js').UpscaleResult | import('./types.js').RawUpscaleResult} Result
 * @typedef {import('./engine.js').Rect} Rect
 * @typedef {import('./engine.js').JobOptions} JobOptions
 * @typedef {(done: number, total: number, tile: Rect | null, tiles: number) => void} Report
 */

export class Upscaler {
  /**
   * @param {import('./platform.js').Platform} platform
   * @param {WebAssembly.Module} wasmModule @param {any} mainModule @param {WasmEngine} engine @param {Uint8Array} modelBytes
   * @param {{ workers: number, tileSize?: number, exact: boolean, memoryLimit: number, recycleBytes: number,
   *   threadedModule: WebAssembly.Module | null, files: import('./platform.js').Files }} how
   */
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
    // block): 256 by default (faster than 128: README, Speed). A pool still gets at least one tile
    // per worker (minTiles), split smaller if need be.
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
   * @returns {{ width: number, height: number }}
   */
  outputSize(width, height, { targetWidth, targetHeight } = {}) {
    if (targetWidth || targetHeight) return { width: /** @type {number} */ (targetWidth), height: /** @type {number} */ (targetHeight) };
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

  /**
   * The options of a Job (wasm/bindings.cpp) for this call, checked.
   * @param {import('./types.js').MemoryOptions} options @returns {JobOptions}
   */
  jobOptions(options) {
    const { raw = false, targetWidth, targetHeight, tileSize = this.tileSize, exact = this.exact, memoryLimit = this.memoryLimit } = options;
    checkTileSize(tileSize);
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
    const { signal, targetWidth, targetHeight } = options;
    if (this.pool.disposed) throw new Error('imdn: the upscaler was disposed');
    if (signal?.aborted) throw abortError(signal);
    const jobOptions = this.jobOptions(options);
    const target = targetWidth !== undefined || targetHeight !== undefined;
    if (target && this.info.arch !== 'IMDN_AS') {
      throw new Error(`imdn: a target size needs the IMDN_AS model; ${this.info.arch} upscales by x${this.info.scale}`);
    }
    if (target) {
      for (const v of [targetWidth, targetHeight]) {
        if (!(Number.isInteger(v) && /** @type {number} */ (v) > 0)) throw new RangeError('imdn: targetWidth and targetHeight must both be positive integers');
      }
      if (/** @type {number} */ (targetWidth) * /** @type {number} */ (targetHeight) > MAX_PIXELS)
        throw new RangeError(`imdn: output of ${targetWidth}x${targetHeight} is too large`);
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
    // (An alpha channel opaque everywhere is no pass of its own: the engine plans the image
    // without it, and so does this check.)
    const plan = this.engine.estimate(image.width, image.height, planChannels(image), jobOptions);
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
    /** @type {Result} */
    const result = raw
      ? { width: out.width, height: out.height, channels: 3, data: new Float32Array(0) }
      : { width: out.width, height: out.height, data: new Uint8ClampedArray(0) };
    if (userProgress) result.data = raw ? new Float32Array(out.width * out.height * 3) : new Uint8ClampedArray(out.width * out.height * 4);
    let tilesDone = 0;
    // The caller's callback: whatever it throws fails this call (an imdn: error), never the host.
    /** @type {Report} */
    const report = (done, total, tile, tiles) => {
      if (tile) tilesDone++;
      try {
        userProgress?.({ done, total, tile, tiles: { done: tilesDone, total: tiles }, output: result });
      } catch (e) {
        throw new Error(`imdn: onProgress threw: ${message(e)}`);
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

  /**
   * The whole job in one worker's instance; progress (and the finished tiles' pixels, when the
   * caller watches) come back as it goes.
   * @param {Required<import('./platform.js').Pixels>} image @param {JobOptions} jobOptions @param {Result} result
   * @param {Report} report @param {AbortSignal} signal
   */
  async whole(image, jobOptions, result, report, signal) {
    const painting = result.data.length > 0;
    const cancel = canShareMemory() ? new Int32Array(new SharedArrayBuffer(4)) : null;
    const msg = await this.pool.run(
      () => {
        const pixels = image.data.slice().buffer;
        const { width, height, channels } = image;
        /** @type {import('./pool.js').Built} */
        const built = { message: { type: 'upscale', pixels, width, height, channels, options: jobOptions, progress: painting, cancel }, transfer: [pixels] };
        return built;
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
    if (msg.type !== 'job-result') throw new Error(`imdn: a worker answered an image with ${msg.type}`);
    if (!painting && msg.data) result.data = msg.data;
  }

  /**
   * A job planned here, its units run by the pool, phase by phase (a barrier between phases).
   * @param {Required<import('./platform.js').Pixels>} image @param {JobOptions} jobOptions @param {Result} result
   * @param {Report} report @param {AbortSignal} signal
   */
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
            /** @type {import('./pool.js').Built} */
            const built = { message: { type: 'unit', data, stop }, transfer: [data.buffer] };
            return built;
          };
          runs.push(
            this.pool.run(build, { owner: job, short: true }).then((msg) => {
              if (signal.aborted) return;
              if (msg.type !== 'unit-result') throw new Error(`imdn: a worker answered a unit with ${msg.type}`);
              const tile = job.scatter(i, msg.data);
              if (spare.length <= 2 * this.workers) spare.push(/** @type {ArrayBuffer} */ (msg.data.buffer));
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
