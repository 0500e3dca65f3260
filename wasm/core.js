// The platform-neutral part of the package: the Upscaler, its tiling and its worker pool.
// browser.js and node.js supply a `platform` (how to read bytes, spawn workers, count cores, turn
// their image types into pixels, the Emscripten factory of the main thread and where the .wasm
// files are) and export createUpscaler.
import { canShareMemory, compileWasm, convertWithModule, instantiate, WasmEngine } from './engine.js';
import { AUTHORS_BASE, MODELS } from './models.js';

export { KNOWN_MODELS } from './models.js';

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
export function planTiles(width, height, { tileSize, halo, align = 1, minTiles = 1 }) {
  // Columns and rows: enough for tileSize; then, while there are fewer tiles than minTiles (one
  // per worker), split the longer side of the tiles again, down to 16 pixels.
  let cols = Math.ceil(width / tileSize);
  let rows = Math.ceil(height / tileSize);
  while (cols * rows < minTiles) {
    const tw = width / cols;
    const th = height / rows;
    if (Math.max(tw, th) / 2 < 16) break;
    if (tw >= th) cols++;
    else rows++;
  }
  const steps = (n, count) => Math.max(align, Math.ceil(Math.ceil(n / count) / align) * align);
  const sx = steps(width, cols);
  const sy = steps(height, rows);
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

// Copies a w x h block of a result (c channels, srcW pixels a row, from (sx, sy)) into the
// output at (ox, oy): RGB floats when raw, else RGBA bytes (grey spread to R, G and B); the
// 'alpha' plane writes only A. Alpha the result lacks stays as the output was filled.
function paste(out, outWidth, src, c, srcW, { sx, sy, ox, oy, w, h }, raw, plane = 'colour') {
  for (let r = 0; r < h; r++) {
    let s = ((sy + r) * srcW + sx) * c;
    if (raw) {
      out.set(src.subarray(s, s + w * 3), ((oy + r) * outWidth + ox) * 3);
      continue;
    }
    let d = ((oy + r) * outWidth + ox) * 4;
    for (let i = 0; i < w; i++, s += c, d += 4) {
      if (plane === 'alpha') {
        out[d + 3] = src[s];
        continue;
      }
      if (c >= 3) {
        out[d] = src[s];
        out[d + 1] = src[s + 1];
        out[d + 2] = src[s + 2];
      } else {
        out[d] = out[d + 1] = out[d + 2] = src[s];
      }
      if (c === 2 || c === 4) out[d + 3] = src[s + c - 1];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Worker pool

// Jobs hold tasks ({ build() -> { message, transfer }, done(msg) }); the pool hands the next
// waiting task of each job in turn to an idle worker, spawning workers up to its size.
class Pool {
  constructor(spawnWorker, size, init) {
    this.spawnWorker = spawnWorker; // () => handle (see spawnWorker in browser.js and node.js)
    this.size = size;
    this.init = init; // () => init message (a fresh model copy each time)
    this.workers = []; // { handle, busy: { job, task, id } | null }
    this.jobs = [];
    this.next = 0;
    this.nextId = 1;
    this.disposed = false;
  }

  spawn() {
    const handle = this.spawnWorker();
    const w = { handle, busy: null };
    handle.onMessage((msg) => this.onMessage(w, msg));
    handle.onFailure((message) => this.onFailure(w, message));
    const { message, transfer } = this.init();
    handle.post(message, transfer);
    this.workers.push(w);
    return w;
  }

  submit(job) {
    if (!this.jobs.includes(job)) this.jobs.push(job);
    this.pump();
  }

  cancel(job) {
    this.jobs = this.jobs.filter((j) => j !== job);
    // Tasks already running stop at their next unit of work, where they can: a task with a
    // cancel() returns whether it could tell its worker so (a flag in shared memory). Where it
    // could not (no SharedArrayBuffer: pages without cross-origin isolation), its worker is
    // terminated, so the CPU is free at once, and a fresh one starts when work comes.
    for (const w of [...this.workers]) {
      if (w.busy?.job === job && w.busy.task.cancel && !w.busy.task.cancel()) this.retire(w, null);
    }
  }

  pump() {
    while (!this.disposed) {
      this.jobs = this.jobs.filter((j) => !j.settled);
      const ready = this.jobs.filter((j) => j.waiting.length > 0);
      if (ready.length === 0) return;
      let w = this.workers.find((x) => !x.busy);
      if (!w && this.workers.length < this.size) w = this.spawn();
      if (!w) return;
      const job = ready[this.next % ready.length];
      this.next = (this.next + 1) % ready.length;
      const task = job.waiting.shift();
      let built;
      try {
        built = task.build();
      } catch (e) {
        job.fail(e);
        continue;
      }
      const id = this.nextId++;
      w.busy = { job, task, id };
      w.handle.setBusy(true);
      w.handle.post({ ...built.message, id }, built.transfer ?? []);
    }
  }

  onMessage(w, msg) {
    if (msg.type === 'ready') return;
    if (msg.type === 'init-error') {
      this.retire(w, `imdn: a worker could not start: ${msg.message}`);
      return;
    }
    const busy = w.busy;
    if (!busy || busy.id !== msg.id) return;
    if (msg.type === 'progress') {
      try {
        if (!busy.job.settled) busy.task.progress?.(msg);
      } catch (e) {
        busy.job.fail(e);
      }
      return;
    }
    w.busy = null;
    w.handle.setBusy(false);
    if (msg.type === 'result') {
      if (!busy.job.settled) {
        try {
          busy.task.done(msg);
        } catch (e) {
          busy.job.fail(e);
        }
      }
    } else if (msg.type === 'tile-error') {
      busy.job.fail(new Error(msg.message));
      if (msg.fatal) this.retire(w, null);
    }
    this.pump();
  }

  onFailure(w, message) {
    this.retire(w, `imdn: a worker crashed (${message}); it has been replaced`);
  }

  // Removes a worker; the call whose task it held fails with `message`.
  retire(w, message) {
    if (!this.workers.includes(w)) return;
    this.workers = this.workers.filter((x) => x !== w);
    const busy = w.busy;
    w.busy = null;
    w.handle.terminate();
    if (busy && message) busy.job.fail(new Error(message));
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
// Exact tiling: block at a time over tiles, as src/tiled.h describes. The main thread holds the
// whole-image feature maps; workers run the stages on crops.

function grow(t, m, W, H) {
  const x = Math.max(0, t.x - m);
  const y = Math.max(0, t.y - m);
  return { x, y, w: Math.min(W, t.x + t.w + m) - x, h: Math.min(H, t.y + t.h + m) - y };
}

// A rectangle of an interleaved map (pixels or features, any typed array), contiguous.
function takeRect(map, mapW, r, C) {
  const out = new map.constructor(r.w * r.h * C);
  for (let y = 0; y < r.h; y++) {
    const s = ((r.y + y) * mapW + r.x) * C;
    out.set(map.subarray(s, s + r.w * C), y * r.w * C);
  }
  return out;
}

// Writes `core` from data laid out as rectangle `from` (which contains it) into the map.
function putRect(data, from, core, C, map, mapW) {
  for (let y = 0; y < core.h; y++) {
    const s = ((core.y - from.y + y) * from.w + (core.x - from.x)) * C;
    map.set(data.subarray(s, s + core.w * C), ((core.y + y) * mapW + core.x) * C);
  }
}

/**
 * Runs one plane (RGB bytes, width x height) through the network exactly, stage by stage.
 * mode: 'rgb' | 'grey' | 'raw' (what the tail returns); write(tileRect, msg) places a finished
 * output tile; unit() counts progress; returns the number of units it will report.
 */
function exactPlane(job, { rgb, width, height, info, tileSize, mode, attention, workers, sharedMemory, write, unit, finish }) {
  const S = info.stemStride;
  const r = info.upsample;
  const nf = info.nf;
  const cc = info.catChannels;
  const B = info.blocks;
  const bw = Math.ceil(width / S);
  const bh = Math.ceil(height / S);
  const P = bw * bh;
  const outW = width * info.scale;
  const outH = height * info.scale;
  const tiles = planTiles(bw, bh, { tileSize: Math.max(8, Math.round(tileSize / S)), halo: 0, minTiles: workers }).map((t) => ({
    x: t.x,
    y: t.y,
    w: t.w,
    h: t.h,
  }));
  // The pointwise part of a block goes out in chunks: enough for every worker, and small (16K
  // pixels, 4 MiB a map) so that the copies in flight and the workers' heaps stay small.
  const nChunks = Math.min(P, Math.max(2 * workers, Math.ceil(P / 16384)));
  const units = tiles.length * (B + 2) + B * nChunks;

  // With SharedArrayBuffer (Node; browsers when the page is cross-origin isolated) the workers
  // read crops from the maps and write results into them; otherwise crops and results travel in
  // messages.
  const shared = sharedMemory !== false && canShareMemory();
  const map = (n) => (shared ? new Float32Array(new SharedArrayBuffer(n * 4)) : new Float32Array(n));
  const x = map(P * nf);
  const cat = map(P * cc);
  const acc = info.fusion ? map(P * nf) : null;

  // Runs tasks; when all are done, calls then().
  const stage = (tasks, then) => {
    let pending = tasks.length;
    for (const t of tasks) {
      const done = t.done;
      t.done = (msg) => {
        done.call(t, msg);
        unit();
        if (--pending === 0) then();
      };
    }
    job.waiting.push(...tasks);
    job.pool.submit(job);
  };

  // The input pixels under body rect c: { pixels, iw, ih }.
  const inputUnder = (c) => {
    const x0 = c.x * S;
    const y0 = c.y * S;
    const iw = Math.min(width, (c.x + c.w) * S) - x0;
    const ih = Math.min(height, (c.y + c.h) * S) - y0;
    return { pixels: takeRect(rgb, width, { x: x0, y: y0, w: iw, h: ih }, 3), iw, ih };
  };

  // The stem's features become the first block's input x. (The tail recomputes the ones it needs
  // from the input: the stem is 0.3% of the MACs, a kept map of them nf floats per pixel.)
  const stem = () =>
    stage(
      tiles.map((t) => ({
        build() {
          const c = grow(t, 1, bw, bh);
          const { pixels, iw, ih } = inputUnder(c);
          this.c = c;
          const args = shared ? [pixels, iw, ih, c, t, x, bw] : [pixels, iw, ih];
          return { message: { type: 'stage', op: shared ? 'stemInto' : 'stem', args }, transfer: [pixels.buffer] };
        },
        done(msg) {
          if (!shared) putRect(msg.data, this.c, t, nf, x, bw);
        },
      })),
      () => blockA(0),
    );

  const blockA = (b) => {
    const sums = new Float64Array(2 * cc);
    stage(
      tiles.map((t) => ({
        build() {
          const c = grow(t, info.steps, bw, bh);
          if (shared) return { message: { type: 'stage', op: 'blockAInto', args: [b, x, cat, bw, c, t] } };
          const crop = takeRect(x, bw, c, nf);
          const core = { x: t.x - c.x, y: t.y - c.y, w: t.w, h: t.h };
          return { message: { type: 'stage', op: 'blockA', args: [b, crop, c.w, c.h, core] }, transfer: [crop.buffer] };
        },
        done(msg) {
          if (!shared) putRect(msg.cat, t, t, cc, cat, bw);
          if (msg.sums) for (let i = 0; i < sums.length; i++) sums[i] += msg.sums[i];
        },
      })),
      () => blockB(b, info.attention ? attention(b, sums, P) : null),
    );
  };

  const blockB = (b, z) => {
    const tasks = [];
    for (let k = 0; k < nChunks; k++) {
      const p0 = Math.floor((k * P) / nChunks);
      const p1 = Math.floor(((k + 1) * P) / nChunks);
      tasks.push({
        build() {
          if (shared) {
            return { message: { type: 'stage', op: 'blockBInto', args: [b, z ? z.slice() : null, cat, x, acc, p0, p1] } };
          }
          const c = cat.slice(p0 * cc, p1 * cc);
          const xs = x.slice(p0 * nf, p1 * nf);
          const as = acc ? acc.slice(p0 * nf, p1 * nf) : null;
          const zz = z ? z.slice() : null;
          const transfer = [c.buffer, xs.buffer, ...(as ? [as.buffer] : []), ...(zz ? [zz.buffer] : [])];
          return { message: { type: 'stage', op: 'blockB', args: [b, zz, c, xs, as, p1 - p0] }, transfer };
        },
        done(msg) {
          if (shared) return;
          x.set(msg.x, p0 * nf);
          if (acc) acc.set(msg.acc, p0 * nf);
        },
      });
    }
    stage(tasks, () => (b + 1 < B ? blockA(b + 1) : tail()));
  };

  const tail = () =>
    stage(
      tiles.map((t) => ({
        build() {
          const c = grow(t, 2, bw, bh);
          const wide = grow(c, 1, bw, bh);
          const src = takeRect(acc ?? x, bw, c, nf);
          const { pixels, iw, ih } = inputUnder(wide);
          const core = { x: t.x - c.x, y: t.y - c.y, w: t.w, h: t.h };
          const at = { x: c.x - wide.x, y: c.y - wide.y };
          return {
            message: { type: 'stage', op: 'tail', args: [src, pixels, iw, ih, at, c.w, c.h, core, outW - t.x * r, outH - t.y * r, mode] },
            transfer: [src.buffer, pixels.buffer],
          };
        },
        done(msg) {
          write({ x: t.x * r, y: t.y * r, w: msg.width, h: msg.height }, msg);
        },
      })),
      finish,
    );

  return { units, tiles: tiles.length, start: stem };
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
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
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
  const { model, modelBaseUrl, onDownloadProgress, workers = platform.cores(), tileSize, exact = true, sharedMemory, wasm, wasmThreaded, threads, baseUrl } = options;
  if (model === undefined) throw new TypeError('imdn: createUpscaler needs { model }');
  if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`imdn: workers must be a positive integer, got ${workers}`);
  // More workers than cores only adds memory and start-up (each is an instance or a thread).
  const maxWorkers = Math.min(64, Math.max(4, 2 * platform.cores()));
  if (workers > maxWorkers) {
    throw new RangeError(`imdn: workers: ${workers} is more than this machine can use (${platform.cores()} cores; at most ${maxWorkers})`);
  }
  if (tileSize !== undefined && (!Number.isInteger(tileSize) || tileSize < 16)) {
    throw new RangeError(`imdn: tileSize must be an integer of at least 16, got ${tileSize}`);
  }
  if (threads !== undefined && typeof threads !== 'boolean') throw new TypeError(`imdn: threads must be true or false, got ${threads}`);
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
  const [wasmModule, modelBytes, threadedModule] = await Promise.all([
    compileWasm(wasm ?? files.wasm, (src) => platform.readBytes(src)),
    readModel(platform, model, { modelBaseUrl, onDownloadProgress }),
    wantThreads
      ? compileWasm(wasmThreaded ?? files.wasmThreaded, (src) => platform.readBytes(src)).catch((e) => {
          if (threads === true) throw e;
          return null;
        })
      : null,
  ]);
  // The main thread keeps one engine: it validates the model here (so a bad file fails
  // createUpscaler, not the first upscale) and computes the attention weights between stages.
  const main = await instantiate(platform.factory, wasmModule);
  const engine = new WasmEngine(main, modelBytes);
  // Workers get the model in our own format: a checkpoint is read once, here (the threaded module
  // has no checkpoint reader).
  const own = isImdn(modelBytes) ? modelBytes : convertWithModule(main, modelBytes, false).data;
  return new Upscaler(platform, wasmModule, main, engine, own, { workers, tileSize, exact, sharedMemory, threadedModule, files });
}

const isImdn = (b) => b.length >= 8 && String.fromCharCode(...b.subarray(0, 8)) === 'IMDNWASM';

const rgbOf = ({ data, width, height, channels }, pick) => {
  const out = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const o = p * channels;
    if (pick === 'alpha') out[p * 3] = out[p * 3 + 1] = out[p * 3 + 2] = data[o + channels - 1];
    else if (channels >= 3) {
      out[p * 3] = data[o];
      out[p * 3 + 1] = data[o + 1];
      out[p * 3 + 2] = data[o + 2];
    } else out[p * 3] = out[p * 3 + 1] = out[p * 3 + 2] = data[o];
  }
  return out;
};

export class Upscaler {
  constructor(platform, wasmModule, mainModule, engine, modelBytes, { workers, tileSize, exact, sharedMemory, threadedModule, files }) {
    this.platform = platform;
    this.mainModule = mainModule;
    this.engine = engine;
    this.info = engine.info;
    this.exact = exact;
    this.sharedMemory = sharedMemory;
    // Threaded: one worker whose instance runs every operator on `workers` threads, and the exact
    // tiling inside it (src/tiled.h). Otherwise `workers` single-threaded workers share the tiles.
    this.threads = threadedModule ? workers : 1;
    this.workers = threadedModule ? 1 : workers;
    // One worker (threaded or not), exact: the worker's instance tiles the image itself (its
    // threads sharing each step), which spares the stages' copies through this thread. Without
    // shareable memory a single worker still gets stages, so that a cancelled call stops between
    // them (the flag that stops a piece inside the worker is a SharedArrayBuffer).
    this.inside = this.workers === 1 && (this.threads > 1 || (sharedMemory !== false && canShareMemory()));
    // Tiles inside one instance only trade scratch memory for halos: larger by default (about 10%
    // faster than 128 at x4 on 256x256); across workers smaller ones spread better.
    this.tileSize = tileSize ?? (this.inside ? 256 : 128);
    const threaded = this.threads > 1;
    this.pool = new Pool(() => platform.spawnWorker(threaded ? files.workerThreaded : files.worker, threaded), this.workers, () => {
      const model = modelBytes.slice().buffer;
      const message = { type: 'init', wasm: threadedModule ?? wasmModule, model, threads: this.threads };
      return { message, transfer: [model] };
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
    if (options === null || typeof options !== 'object') throw new TypeError(`imdn: upscale options must be an object, got ${options === null ? 'null' : typeof options}`);
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
    const { onProgress: userProgress, signal, raw = false, targetWidth, targetHeight, tileSize = this.tileSize, exact = this.exact, _testCrash } = options;
    if (this.pool.disposed) throw new Error('imdn: the upscaler was disposed');
    if (signal?.aborted) throw abortError(signal);
    if (!Number.isInteger(tileSize) || tileSize < 16) throw new RangeError(`imdn: tileSize must be an integer of at least 16, got ${tileSize}`);
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
    let image = checkPixels(await this.platform.toPixels(input, this.mainModule, { maxInputPixels: options.maxInputPixels }));
    if (signal?.aborted) throw abortError(signal);
    const out = this.outputSize(image.width, image.height, { targetWidth, targetHeight });
    if (out.width * out.height > MAX_PIXELS) throw new RangeError(`imdn: output of ${out.width}x${out.height} is too large`);
    image = raw ? { data: rgbOf(image), width: image.width, height: image.height, channels: 3 } : compact(image);
    const { width, height, channels } = image;
    const grey = channels <= 2;
    const alpha = channels === 2 || channels === 4;

    // The result, filled tile by tile; progress callbacks see it as it grows.
    const data = raw ? new Float32Array(out.width * out.height * 3) : new Uint8ClampedArray(out.width * out.height * 4);
    if (!raw && !alpha) for (let i = 3; i < data.length; i += 4) data[i] = 255;
    const output = raw ? { width: out.width, height: out.height, channels: 3, data } : { width: out.width, height: out.height, data };


    // IMDN_AS's any-size cropping and any-scale resize are whole-image steps: one piece then.
    // An image that fits in one tile also goes to one worker in one piece (exact: it is the whole
    // image), which spares the stages' copies.
    const isAs = this.info.arch === 'IMDN_AS';
    const S = this.info.stemStride;
    const bodyTile = Math.max(8, Math.round(tileSize / S));
    // (With more than one worker, an image that fits in one tile is still split, one tile per
    // worker, unless it is too small to gain from it.)
    const oneTile = Math.ceil(width / S) <= bodyTile && Math.ceil(height / S) <= bodyTile;
    const small = this.workers === 1 || Math.max(width, height) / S < 128;
    const whole = isAs || (exact && ((oneTile && small) || this.inside));
    const staged = exact && !whole;

    return new Promise((resolve, reject) => {
      // The caller's callback: whatever it throws fails this call (an imdn: error), never the host.
      const onProgress =
        userProgress &&
        ((p) => {
          try {
            userProgress(p);
          } catch (e) {
            job.fail(new Error(`imdn: onProgress threw: ${e?.message ?? e}`));
          }
        });
      let done = 0;
      let total = 0;
      let tilesDone = 0;
      let tilesTotal = 0;
      const job = {
        pool: this.pool,
        waiting: [],
        settled: false,
        fail: (e) => {
          if (job.settled) return;
          job.settled = true;
          this.pool.cancel(job);
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      const report = (rect) => {
        done++;
        if (rect) tilesDone++;
        if (onProgress) {
          onProgress({
            done,
            total,
            tile: rect ? { x: rect.x, y: rect.y, width: rect.w, height: rect.h } : null,
            tiles: { done: tilesDone, total: tilesTotal },
            output,
          });
        }
      };
      const finish = () => {
        if (job.settled) return;
        job.settled = true;
        signal?.removeEventListener('abort', onAbort);
        resolve(output);
      };
      const onAbort = () => job.fail(abortError(signal));
      signal?.addEventListener('abort', onAbort, { once: true });

      if (staged) {
        // Exact: the colour plane, then alpha (when not opaque) as a grey image of its own.
        const planes = [{ rgb: rgbOf(image), mode: raw ? 'raw' : grey ? 'grey' : 'rgb', plane: 'colour' }];
        if (alpha) planes.push({ rgb: rgbOf(image, 'alpha'), mode: 'grey', plane: 'alpha' });
        const runs = planes.map((pl, i) => {
          let last = null;
          return exactPlane(job, {
            rgb: pl.rgb,
            width,
            height,
            info: this.info,
            tileSize,
            mode: pl.mode,
            workers: this.workers,
            sharedMemory: this.sharedMemory,
            // The attention weights need the whole image's statistics: computed here, between stages.
            attention: (b, sums, count) => this.engine.stage('attention', [b, sums, count]).z,
            write: (rect, msg) => {
              paste(data, out.width, msg.data, msg.channels, rect.w, { sx: 0, sy: 0, ox: rect.x, oy: rect.y, w: rect.w, h: rect.h }, raw, pl.plane);
              last = rect;
            },
            unit: () => {
              report(last);
              last = null;
            },
            finish: () => (i + 1 < runs.length ? runs[i + 1].start() : finish()),
          });
        });
        total = runs.reduce((n, r) => n + r.units, 0);
        tilesTotal = runs.reduce((n, r) => n + r.tiles, 0);
        runs[0].start();
        return;
      }

      // Whole-network tiles with a halo as wide as the receptive field (fast, approximate where
      // the model has attention), or IMDN_AS in one piece.
      const tiles = whole
        ? [{ x: 0, y: 0, w: width, h: height, cx: 0, cy: 0, cw: width, ch: height }]
        : planTiles(width, height, { tileSize, halo: this.info.receptiveRadius, align: this.info.alignment });
      const scale = isAs ? 1 : this.info.scale;
      total = tilesTotal = tiles.length;
      // The worker runs each piece as exact tiles of its own: one tile for crops of ours (they are
      // small), 128 body pixels for IMDN_AS's whole image (bounded memory).
      const tile = isAs ? 128 : this.inside && exact ? bodyTile : 1 << 20;
      const tileOptions = { raw, targetWidth, targetHeight, tile, ...(_testCrash ? { _testCrash } : {}) };
      // One piece runs long: its units of work are reported, and a cancelled call stops it early.
      const cancel = whole && canShareMemory() ? new Int32Array(new SharedArrayBuffer(4)) : null;
      let left = tiles.length;
      job.waiting.push(
        ...tiles.map((t) => ({
          build() {
            const pixels = takeRect(image.data, width, { x: t.cx, y: t.cy, w: t.cw, h: t.ch }, channels);
            return {
              message: { type: 'tile', pixels: pixels.buffer, width: t.cw, height: t.ch, channels, options: tileOptions, progress: whole && !!onProgress, cancel },
              transfer: [pixels.buffer],
            };
          },
          progress(msg) {
            // The piece's units, and its paste as one more.
            done = msg.done;
            total = msg.total + 1;
            onProgress?.({ done, total, tile: null, tiles: { done: tilesDone, total: tilesTotal }, output });
          },
          cancel() {
            if (cancel) Atomics.store(cancel, 0, 1);
            return cancel !== null; // else the pool stops the worker itself
          },
          done(msg) {
            const s = isAs ? { ...t, w: msg.width, h: msg.height } : t;
            const src = raw ? new Float32Array(msg.data) : new Uint8Array(msg.data);
            const block = { sx: (s.x - s.cx) * scale, sy: (s.y - s.cy) * scale, ox: s.x * scale, oy: s.y * scale, w: s.w * scale, h: s.h * scale };
            paste(data, out.width, src, msg.channels, msg.width, block, raw);
            report({ x: s.x * scale, y: s.y * scale, w: s.w * scale, h: s.h * scale });
            if (--left === 0) finish();
          },
        })),
      );
      this.pool.submit(job);
    });
  }

  /** Stops the workers; pending calls reject. The upscaler cannot be used afterwards. */
  dispose() {
    this.pool.dispose();
    this.engine.dispose();
  }
}
