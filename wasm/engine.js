// Loading the WebAssembly module and wrapping its Embind Engine. Shared by the main thread (model
// validation, and decoding/encoding under Node) and the workers (the actual upscaling).
//
// Platform-neutral on purpose: no Node module, no file of dist/ and no asset URL is named here, so
// that this file can sit in any bundle. The entries (browser.js, node.js) and the workers
// (worker.js, worker-mt.js, worker-node.js) import the Emscripten factory they need and pass it in.
//
// The module is always handed a compiled WebAssembly.Module through `instantiateWasm`, never left
// to fetch its .wasm itself: browsers, workers, bundlers and Node then load it the same way.

// A 30-byte module using a v128 instruction: WebAssembly.validate() says whether SIMD is there.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

/** Whether this JavaScript engine runs WebAssembly SIMD, which imdn-wasm needs. */
export function hasWasmSimd() {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

/** Whether this context can run the threaded module (SharedArrayBuffer can be shared here). */
export function canShareMemory() {
  return typeof SharedArrayBuffer === 'function' && typeof Atomics === 'object' && (globalThis.crossOriginIsolated ?? true);
}

/**
 * Compiles the module from a WebAssembly.Module (returned as is), bytes, or a location that
 * `readBytes` (the platform's reader: fetch in browsers, fs or fetch under Node) can read.
 */
/**
 * @param {WebAssembly.Module | BufferSource | string | URL | null | undefined} source
 * @param {(src: string | URL) => Promise<ArrayBuffer | Uint8Array>} readBytes
 * @returns {Promise<WebAssembly.Module>}
 */
export async function compileWasm(source, readBytes) {
  if (source === undefined || source === null) throw new TypeError('imdn: compileWasm needs a module, its bytes or its location');
  if (!hasWasmSimd()) {
    throw new Error(
      'imdn: this browser or runtime lacks WebAssembly SIMD, which imdn-wasm needs ' + '(Chrome/Edge 91+, Firefox 89+, Safari 16.4+, Node 16.4+)',
    );
  }
  if (source instanceof WebAssembly.Module) return source;
  const bytes = ArrayBuffer.isView(source) || source instanceof ArrayBuffer ? source : await readBytes(source);
  try {
    return await WebAssembly.compile(/** @type {BufferSource} */ (bytes));
  } catch (e) {
    throw new Error(`imdn: cannot compile the WebAssembly module: ${message(e)}`);
  }
}

/**
 * Instantiates an Emscripten factory (dist/imdn.js, or the threaded dist/imdn-mt.js) around a
 * compiled WebAssembly.Module. `options` go to the factory as Module settings; the threaded one
 * takes { imdnThreads, pthreadWorker, mainScriptUrlOrBlob } (see worker-mt.js).
 */
/**
 * @param {import('./platform.js').Factory} factory @param {WebAssembly.Module} wasmModule
 * @param {Record<string, unknown>} [options]
 * @returns {Promise<any>} the Emscripten module (its API: wasm/bindings.cpp)
 */
export async function instantiate(factory, wasmModule, options = {}) {
  let lastError = '';
  return factory({
    ...options,
    /** @param {WebAssembly.Imports} imports @param {(i: WebAssembly.Instance, m: WebAssembly.Module) => void} receive */
    instantiateWasm(imports, receive) {
      WebAssembly.instantiate(wasmModule, imports).then(
        (instance) => receive(instance, wasmModule),
        (/** @type {Error} */ e) => {
          lastError = e.message;
        },
      );
      return {};
    },
    // Without these hooks, Emscripten 3.1.6's MODULARIZE output can end a Node process with exit
    // code 1 and no message when the module traps.
    print: () => {},
    printErr: (/** @type {unknown} */ text) => {
      lastError = String(text);
    },
    onAbort: (/** @type {unknown} */ what) => {
      lastError = `WebAssembly aborted: ${what} ${lastError}`;
    },
    quit: (/** @type {number} */ status, /** @type {Error | undefined} */ toThrow) => {
      throw toThrow ?? new Error(`imdn: WebAssembly module exited (${status})`);
    },
  });
}

/** A message of any thrown value. @param {unknown} e */
export const message = (e) => (e instanceof Error ? e.message : String(e));

/** The module's answer, or its error thrown (cancelled: the caller stopped it). @param {any} r */
const check = (r) => {
  if (r.error) throw Object.assign(new Error(`imdn: ${r.error}`), r.cancelled ? { cancelled: true } : {});
  return r;
};

/**
 * The options of a job (wasm/bindings.cpp: job_options).
 * @typedef {{ raw?: boolean, tileSize?: number, exact?: boolean, minTiles?: number, targetWidth?: number,
 *   targetHeight?: number, memoryLimit?: number, executor?: 'instance' | 'units', mapBits?: number,
 *   recompute?: number, externalMemory?: boolean }} JobOptions
 * @typedef {{ x: number, y: number, width: number, height: number }} Rect
 */

/** A model loaded into one module instance. Throws Error with the loader's reason for bad files. */
export class WasmEngine {
  /**
   * @param {any} module an instantiated Emscripten module (see instantiate)
   * @param {Uint8Array} modelBytes .imdn, or (but in the threaded module) .pth
   */
  constructor(module, modelBytes, threads = 1) {
    this.module = module;
    this.engine = new module.Engine(modelBytes, threads);
    const info = this.engine.info();
    if (info.error) {
      this.engine.delete();
      this.engine = null;
      throw new Error(`imdn: model refused: ${info.error}`);
    }
    /** @type {import('./types.js').ModelInfo} */
    this.info = info;
  }

  /**
   * A whole image in this instance. pixels: width*height*channels bytes (channels 1-4).
   * options: JobOptions and onProgress(done, total, tile, tilePixels, tiles) -> true to stop,
   * progressPixels (tilePixels are sent, and then data is null: the tiles were the output).
   * Returns { width, height, channels, data } (data: Uint8ClampedArray RGBA, or Float32Array RGB
   * when raw). Stopped: throws with `cancelled: true`.
   * @param {Uint8Array | Uint8ClampedArray} pixels
   * @param {number} width @param {number} height @param {number} channels
   * @param {JobOptions & { onProgress?: (done: number, total: number, tile: Rect | null, pixels: Uint8ClampedArray | Float32Array | null, tiles: number) => boolean, progressPixels?: boolean }} options
   * @returns {{ width: number, height: number, channels: number, data: Uint8ClampedArray | Float32Array | null, memory: import('./types.js').MemoryPlan }}
   */
  upscale(pixels, width, height, channels, options = {}) {
    return check(this.engine.upscale(pixels, width, height, channels, options));
  }

  /**
   * One unit of a job planned in another instance (WasmJob.gather) -> its encoded results, written
   * over the unit's own bytes where they fit (the unit is read in full first).
   * @param {Uint8Array} unit
   * @returns {Uint8Array}
   */
  run(unit) {
    return check(this.engine.run(unit)).data;
  }

  /**
   * A job planned in this instance whose units may run anywhere (see wasm/bindings.cpp).
   * @param {Uint8Array | Uint8ClampedArray} pixels @param {number} width @param {number} height
   * @param {number} channels @param {JobOptions} options
   * @returns {WasmJob}
   */
  job(pixels, width, height, channels, options) {
    return new WasmJob(new this.module.Job(this.engine, pixels, width, height, channels, options));
  }

  /**
   * The memory plan a width x height image of `channels` channels would get with these job
   * options (memoryLimit included), planned without pixels: { bytes, limit, fits, maps, tileSize,
   * float32Bytes?, why? } (see wasm/bindings.cpp).
   * @param {number} width @param {number} height @param {number} channels @param {JobOptions} options
   * @returns {import('./types.js').MemoryPlan}
   */
  estimate(width, height, channels, options) {
    const job = new this.module.Job(this.engine, null, width, height, channels, options);
    try {
      return check(job.plan()).memory;
    } finally {
      job.delete();
    }
  }

  /** Bytes of this instance's WebAssembly memory (it grows, and never shrinks). */
  get memoryBytes() {
    return this.module.HEAP8.length;
  }

  /**
   * Bytes of the ArrayBuffers a job of this instance holds outside its memory (float16 maps, the
   * RGBA output: wasm/bindings.cpp), now and at most since the instance began.
   */
  get externalBytes() {
    return { now: this.module.imdnExternalBytes ?? 0, most: this.module.imdnExternalPeak ?? 0 };
  }

  /**
   * Milliseconds per kind of operation for one pass (after a warm-up): [[kind, ms], ...].
   * @param {number} width @param {number} height @returns {[string, number][]}
   */
  profile(width, height) {
    return check(this.engine.profile(width, height, undefined)).ops;
  }

  /**
   * The same for the job upscale() would run with these options (RGBA out): { ops, wall }, wall
   * the job's milliseconds (what the operations leave out is the plan's own work).
   * @param {number} width @param {number} height @param {JobOptions} options
   * @returns {{ ops: [string, number][], wall: number }}
   */
  profileJob(width, height, options) {
    const r = check(this.engine.profile(width, height, options));
    return { ops: r.ops, wall: r.wall };
  }

  dispose() {
    if (this.engine) this.engine.delete();
    this.engine = null;
  }
}

/** A job: its plan, and its units' inputs and results, in the instance that planned it. */
export class WasmJob {
  /** @param {any} job the module's Job (wasm/bindings.cpp) */
  constructor(job) {
    this.job = job;
    const plan = job.plan();
    if (plan.error) {
      job.delete();
      this.job = null;
      throw new Error(`imdn: ${plan.error}`);
    }
    /** @type {{ phases: { units: number, here: boolean }[], units: number, tiles: number, width: number, height: number, memory: import('./types.js').MemoryPlan }} */
    this.plan = plan;
  }

  /**
   * Unit i's inputs (every unit of the phases before it scattered), written into `into` when they
   * fit there (reusing a buffer is several times cheaper than a fresh one), else into a new array.
   * @param {number} i @param {Uint8Array} [into]
   * @returns {Uint8Array}
   */
  gather(i, into) {
    return check(this.job.gather(i, into ?? null)).data;
  }

  /**
   * Unit i's results (from WasmEngine.run elsewhere), or without data unit i run here.
   * @param {number} i @param {Uint8Array} [data]
   * @returns {Rect | null} the output rectangle unit i finished
   */
  scatter(i, data) {
    return check(this.job.scatter(i, data ?? null)).tile;
  }

  /** @param {Rect} [rect] @returns {{ width: number, height: number, channels: number, data: Uint8ClampedArray | Float32Array }} */
  result(rect) {
    return check(this.job.result(rect ?? null));
  }

  dispose() {
    if (this.job) this.job.delete();
    this.job = null;
  }
}

/** Largest image file decoded unless the caller says otherwise (src/image.h kDefaultMaxInputPixels). */
export const DEFAULT_MAX_INPUT_PIXELS = 2 ** 26;

/**
 * Decodes PNG, JPEG, BMP, TGA, GIF, PSD, HDR or PNM bytes with stb_image inside the module.
 * maxPixels: largest image accepted (0: DEFAULT_MAX_INPUT_PIXELS); the header is checked before anything
 * is allocated, and raw formats shorter than their dimensions need are refused (src/image.h).
 * @param {any} module @param {Uint8Array} bytes @param {number} [maxPixels]
 * @returns {{ data: Uint8Array, width: number, height: number, channels: number }}
 */
export function decodeWithModule(module, bytes, maxPixels = 0) {
  if (maxPixels !== 0 && !(Number.isInteger(maxPixels) && maxPixels > 0)) {
    throw new RangeError(`imdn: maxInputPixels must be a positive integer, got ${maxPixels}`);
  }
  const r = module.decodeImage(bytes, maxPixels);
  if (r.error) throw new Error(`imdn: ${r.error}`);
  return r;
}

/**
 * Encodes 8-bit pixels (1-4 channels) as PNG inside the module.
 * @param {any} module @param {Uint8Array | Uint8ClampedArray} pixels @param {number} width @param {number} height
 * @param {number} channels @returns {Uint8Array}
 */
export function encodePngWithModule(module, pixels, width, height, channels) {
  const r = module.encodePng(pixels, width, height, channels);
  if (r.error) throw new Error(`imdn: ${r.error}`);
  return r.data;
}

/**
 * A model file (.imdn or .pth) as .imdn bytes, inside the module: { data, arch, scale }.
 * @param {any} module @param {Uint8Array} bytes @param {boolean} f16
 * @returns {{ data: Uint8Array, arch: string, scale: number }}
 */
export function convertWithModule(module, bytes, f16) {
  const r = module.convertModel(bytes, f16);
  if (r.error) throw new Error(`imdn: ${r.error}`);
  return r;
}
