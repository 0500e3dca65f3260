// The platform-neutral part of the package: the Upscaler, its tiling and its worker pool.
// browser.js and node.js supply a `platform` (how to read bytes, spawn workers, count cores and
// turn their image types into pixels) and export createUpscaler.
import { compileWasm, instantiate, WasmEngine } from './engine.js';

/** Model names the package knows (models/manifest.json); their files are converted by the user. */
export const KNOWN_MODELS = Object.freeze({
  x2: 'IMDN_x2.imdn',
  x3: 'IMDN_x3.imdn',
  x4: 'IMDN_x4.imdn',
  as: 'IMDN_AS.imdn',
  rtc: 'IMDN_RTC.imdn',
  rte: 'IMDN_RTE.imdn',
});

/** Largest image accepted, in pixels, for input and output alike (as in the C++ core). */
export const MAX_PIXELS = 2 ** 28;

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

// The fewest channels that hold the image: grey if R = G = B everywhere, no alpha if it is all 255.
function compact({ data, width, height, channels }) {
  const n = width * height;
  const colour = channels >= 3;
  const alpha = channels === 2 || channels === 4;
  let grey = true;
  let opaque = true;
  for (let p = 0; p < n && (grey || opaque); p++) {
    const o = p * channels;
    if (colour && grey && (data[o] !== data[o + 1] || data[o] !== data[o + 2])) grey = false;
    if (alpha && opaque && data[o + channels - 1] !== 255) opaque = false;
  }
  const keepAlpha = alpha && !opaque;
  const out = (grey ? 1 : 3) + (keepAlpha ? 1 : 0);
  if (out === channels) return { data, width, height, channels };
  const packed = new Uint8Array(n * out);
  for (let p = 0; p < n; p++) {
    const o = p * channels;
    const q = p * out;
    if (grey) packed[q] = data[o];
    else {
      packed[q] = data[o];
      packed[q + 1] = data[o + 1];
      packed[q + 2] = data[o + 2];
    }
    if (keepAlpha) packed[q + out - 1] = data[o + channels - 1];
  }
  return { data: packed, width, height, channels: out };
}

// ---------------------------------------------------------------------------------------------
// Tiles

/**
 * Splits a width x height input into tiles of at most `tileSize` pixels a side, as equal as the
 * grid allows (no thin slivers at the right and bottom). Each tile has a core (what it
 * contributes) and a crop (the core plus `halo` pixels of real neighbours on every side that the
 * image has). Tile corners sit on multiples of `align` (the stem's stride), so a tile sees the
 * same sampling grid as the whole image.
 */
export function planTiles(width, height, { tileSize, halo, align = 1 }) {
  const steps = (n) => {
    const count = Math.ceil(n / tileSize);
    return Math.max(align, Math.ceil(Math.ceil(n / count) / align) * align);
  };
  const sx = steps(width);
  const sy = steps(height);
  const pad = Math.ceil(halo / align) * align;
  const tiles = [];
  for (let y = 0; y < height; y += sy) {
    for (let x = 0; x < width; x += sx) {
      const w = Math.min(sx, width - x);
      const h = Math.min(sy, height - y);
      const cx = Math.max(0, x - pad);
      const cy = Math.max(0, y - pad);
      tiles.push({ x, y, w, h, cx, cy, cw: Math.min(width, x + w + pad) - cx, ch: Math.min(height, y + h + pad) - cy });
    }
  }
  return tiles;
}

function cropPixels({ data, width, channels }, t) {
  const out = new Uint8Array(t.cw * t.ch * channels);
  for (let r = 0; r < t.ch; r++) {
    const src = ((t.cy + r) * width + t.cx) * channels;
    out.set(data.subarray(src, src + t.cw * channels), r * t.cw * channels);
  }
  return out;
}

// Copies a tile's core from its result into the output (RGBA bytes, or RGB floats when raw).
function stitch(out, outWidth, result, t, scale, raw) {
  const data = raw ? new Float32Array(result.data) : new Uint8Array(result.data);
  const c = result.channels;
  const ox = t.x * scale;
  const oy = t.y * scale;
  const sx = (t.x - t.cx) * scale;
  const sy = (t.y - t.cy) * scale;
  const w = t.w * scale;
  const h = t.h * scale;
  for (let r = 0; r < h; r++) {
    let s = ((sy + r) * result.width + sx) * c;
    if (raw) {
      out.set(data.subarray(s, s + w * 3), ((oy + r) * outWidth + ox) * 3);
      continue;
    }
    let d = ((oy + r) * outWidth + ox) * 4;
    for (let i = 0; i < w; i++, s += c, d += 4) {
      if (c >= 3) {
        out[d] = data[s];
        out[d + 1] = data[s + 1];
        out[d + 2] = data[s + 2];
      } else {
        out[d] = out[d + 1] = out[d + 2] = data[s];
      }
      out[d + 3] = c === 2 || c === 4 ? data[s + c - 1] : 255;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Worker pool

class Pool {
  constructor(platform, size, init) {
    this.platform = platform;
    this.size = size;
    this.init = init; // () => init message (a fresh model copy each time)
    this.workers = []; // { handle, busy: task | null }
    this.jobs = []; // round-robin over jobs with tiles waiting
    this.next = 0;
    this.nextId = 1;
    this.disposed = false;
  }

  spawn() {
    const handle = this.platform.spawnWorker();
    const w = { handle, busy: null };
    handle.onMessage((msg) => this.onMessage(w, msg));
    handle.onFailure((message) => this.onFailure(w, message));
    const { message, transfer } = this.init();
    handle.post(message, transfer);
    this.workers.push(w);
    return w;
  }

  submit(job) {
    this.jobs.push(job);
    this.pump();
  }

  cancel(job) {
    this.jobs = this.jobs.filter((j) => j !== job);
  }

  pump() {
    while (!this.disposed) {
      this.jobs = this.jobs.filter((j) => j.waiting.length > 0 && !j.settled);
      if (this.jobs.length === 0) return;
      let w = this.workers.find((x) => !x.busy);
      if (!w && this.workers.length < this.size) w = this.spawn();
      if (!w) return;
      const job = this.jobs[this.next % this.jobs.length];
      this.next = (this.next + 1) % Math.max(1, this.jobs.length);
      const tile = job.waiting.shift();
      const id = this.nextId++;
      w.busy = { job, tile, id };
      w.handle.setBusy(true);
      const pixels = cropPixels(job.image, tile);
      w.handle.post(
        {
          type: 'tile',
          id,
          pixels: pixels.buffer,
          width: tile.cw,
          height: tile.ch,
          channels: job.image.channels,
          options: job.tileOptions,
        },
        [pixels.buffer],
      );
    }
  }

  onMessage(w, msg) {
    if (msg.type === 'ready') return;
    if (msg.type === 'init-error') {
      this.retire(w, `imdn: a worker could not start: ${msg.message}`);
      return;
    }
    const task = w.busy;
    if (!task || task.id !== msg.id) return;
    w.busy = null;
    w.handle.setBusy(false);
    if (msg.type === 'result') {
      task.job.tileDone(task.tile, msg);
    } else if (msg.type === 'tile-error') {
      task.job.fail(new Error(msg.message));
      if (msg.fatal) this.retire(w, null);
    }
    this.pump();
  }

  onFailure(w, message) {
    this.retire(w, `imdn: a worker crashed (${message}); it has been replaced`);
  }

  // Removes a worker; the call whose tile it held fails with `message`.
  retire(w, message) {
    if (!this.workers.includes(w)) return;
    this.workers = this.workers.filter((x) => x !== w);
    const task = w.busy;
    w.busy = null;
    w.handle.terminate();
    if (task && message) task.job.fail(new Error(message));
    this.pump();
  }

  dispose() {
    this.disposed = true;
    for (const w of this.workers) {
      w.handle.terminate();
      if (w.busy) w.busy.job.fail(new Error('imdn: the upscaler was disposed'));
    }
    for (const j of this.jobs) j.fail(new Error('imdn: the upscaler was disposed'));
    this.workers = [];
    this.jobs = [];
  }
}

// ---------------------------------------------------------------------------------------------
// The upscaler

async function readModel(platform, model, modelBaseUrl) {
  if (model instanceof ArrayBuffer) return new Uint8Array(model.slice(0));
  if (ArrayBuffer.isView(model)) return new Uint8Array(model.buffer.slice(model.byteOffset, model.byteOffset + model.byteLength));
  if (typeof model === 'string' && Object.hasOwn(KNOWN_MODELS, model)) {
    const base = modelBaseUrl ?? platform.defaultModelBase?.();
    if (!base) {
      throw new Error(
        `imdn: model '${model}' is a known name, but no modelBaseUrl says where its file ${KNOWN_MODELS[model]} is ` +
          '(the package ships no weights: convert the official checkpoints with tools/convert.py)',
      );
    }
    return new Uint8Array(await platform.readBytes(platform.join(base, KNOWN_MODELS[model])));
  }
  if (typeof model === 'string' || model instanceof URL) return new Uint8Array(await platform.readBytes(model));
  throw new TypeError('imdn: model must be a URL, a path (Node), a known name (x2, x3, x4, as, rtc, rte) or bytes');
}

/**
 * The engine behind createUpscaler, for a given platform. See index.d.ts for the options.
 */
export async function createUpscalerWith(platform, options = {}) {
  const {
    model,
    modelBaseUrl,
    workers = platform.cores(),
    tileSize = 256,
    wasm,
  } = options;
  if (model === undefined) throw new TypeError('imdn: createUpscaler needs { model }');
  if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`imdn: workers must be a positive integer, got ${workers}`);
  if (!Number.isInteger(tileSize) || tileSize < 16) throw new RangeError(`imdn: tileSize must be an integer of at least 16, got ${tileSize}`);
  const [wasmModule, modelBytes] = await Promise.all([
    compileWasm(wasm, (src) => platform.readBytes(src)),
    readModel(platform, model, modelBaseUrl),
  ]);
  // Validate the model once here, so a bad file fails createUpscaler, not the first upscale.
  const main = await instantiate(wasmModule);
  const probe = new WasmEngine(main, modelBytes);
  const info = probe.info;
  probe.dispose();
  return new Upscaler(platform, wasmModule, main, modelBytes, info, { workers, tileSize });
}

export class Upscaler {
  constructor(platform, wasmModule, mainModule, modelBytes, info, { workers, tileSize }) {
    this.platform = platform;
    this.wasmModule = wasmModule;
    this.mainModule = mainModule;
    this.info = info;
    this.tileSize = tileSize;
    this.workers = workers;
    this.pool = new Pool(platform, workers, () => {
      const model = modelBytes.slice().buffer;
      return { message: { type: 'init', wasm: wasmModule, model }, transfer: [model] };
    });
  }

  /** Output width and height for an input of width x height. */
  outputSize(width, height, { targetWidth, targetHeight } = {}) {
    if (targetWidth || targetHeight) return { width: targetWidth, height: targetHeight };
    return { width: width * this.info.scale, height: height * this.info.scale };
  }

  /**
   * Upscales an image; see index.d.ts. Resolves to { width, height, data } with RGBA bytes, or,
   * with { raw: true }, RGB floats of the network's unclamped output.
   */
  async upscale(input, options = {}) {
    const { onProgress, signal, raw = false, targetWidth, targetHeight, tileSize = this.tileSize, _testCrash } = options;
    if (this.pool.disposed) throw new Error('imdn: the upscaler was disposed');
    if (signal?.aborted) throw abortError(signal);
    if (!Number.isInteger(tileSize) || tileSize < 16) throw new RangeError(`imdn: tileSize must be an integer of at least 16, got ${tileSize}`);
    if ((targetWidth !== undefined || targetHeight !== undefined) && this.info.arch !== 'IMDN_AS') {
      throw new Error(`imdn: a target size needs the IMDN_AS model; ${this.info.arch} upscales by x${this.info.scale}`);
    }
    if (targetWidth !== undefined || targetHeight !== undefined) {
      for (const v of [targetWidth, targetHeight]) {
        if (!Number.isInteger(v) || v <= 0) throw new RangeError('imdn: targetWidth and targetHeight must both be positive integers');
      }
      if (targetWidth * targetHeight > MAX_PIXELS) throw new RangeError(`imdn: output of ${targetWidth}x${targetHeight} is too large`);
    }
    let image = checkPixels(await this.platform.toPixels(input, this.mainModule));
    if (signal?.aborted) throw abortError(signal);
    const out = this.outputSize(image.width, image.height, { targetWidth, targetHeight });
    if (out.width * out.height > MAX_PIXELS) throw new RangeError(`imdn: output of ${out.width}x${out.height} is too large`);
    if (raw) {
      // Raw output is the network's RGB: drop alpha, spread grey.
      const { data, width, height, channels } = image;
      const rgb = new Uint8Array(width * height * 3);
      for (let p = 0; p < width * height; p++) {
        for (let k = 0; k < 3; k++) rgb[p * 3 + k] = data[p * channels + (channels >= 3 ? k : 0)];
      }
      image = { data: rgb, width, height, channels: 3 };
    } else {
      image = compact(image);
    }
    // IMDN_AS runs as one piece (its any-size cropping and any-scale resize are whole-image steps).
    const whole = this.info.arch === 'IMDN_AS';
    const tiles = whole
      ? [{ x: 0, y: 0, w: image.width, h: image.height, cx: 0, cy: 0, cw: image.width, ch: image.height }]
      : planTiles(image.width, image.height, { tileSize, halo: this.info.receptiveRadius, align: this.info.alignment });
    const scale = whole ? 1 : this.info.scale;
    const result = raw ? new Float32Array(out.width * out.height * 3) : new Uint8ClampedArray(out.width * out.height * 4);
    // The result, filled tile by tile; progress callbacks see it as it grows.
    const output = raw ? { width: out.width, height: out.height, channels: 3, data: result } : { width: out.width, height: out.height, data: result };
    const tileOptions = { raw, targetWidth, targetHeight, ...(_testCrash ? { _testCrash } : {}) };

    return new Promise((resolve, reject) => {
      let done = 0;
      const job = {
        image,
        tileOptions,
        waiting: tiles.slice(),
        settled: false,
        tileDone: (tile, msg) => {
          if (job.settled) return;
          const s = whole ? { ...tile, w: msg.width, h: msg.height } : tile;
          stitch(result, out.width, msg, s, scale, raw);
          done++;
          if (onProgress) {
            try {
              onProgress({
                done,
                total: tiles.length,
                tile: { x: s.x * scale, y: s.y * scale, width: s.w * scale, height: s.h * scale },
                output,
              });
            } catch (e) {
              job.fail(e);
              return;
            }
          }
          if (done === tiles.length) {
            job.settled = true;
            signal?.removeEventListener('abort', onAbort);
            resolve(output);
          }
        },
        fail: (e) => {
          if (job.settled) return;
          job.settled = true;
          this.pool.cancel(job);
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      const onAbort = () => job.fail(abortError(signal));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pool.submit(job);
    });
  }

  /** Stops the workers; pending calls reject. The upscaler cannot be used afterwards. */
  dispose() {
    this.pool.dispose();
  }
}
