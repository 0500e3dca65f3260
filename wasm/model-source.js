// Where a model's bytes come from: the caller's bytes or file, or a named model fetched from its
// pinned location, checked against its sha256 and cached (each platform says where: the Cache API
// in browsers, a folder under Node). One fetch with progress for every remote file.
import { message } from './engine.js';
import { AUTHORS_BASE, MODELS } from './models.js';

/** @typedef {(p: { loaded: number, total: number | null, url: string }) => void} DownloadProgress */

/**
 * The model's bytes: a copy of the caller's bytes, a file or URL's, or a named model's (checked
 * against its sha256).
 * @param {import('./platform.js').Platform} platform
 * @param {unknown} model
 * @param {{ modelBaseUrl?: string | URL, onDownloadProgress?: unknown }} how
 * @returns {Promise<Uint8Array>}
 */
export async function readModel(platform, model, { modelBaseUrl, onDownloadProgress }) {
  if (model instanceof ArrayBuffer) return new Uint8Array(model.slice(0));
  if (ArrayBuffer.isView(model)) return new Uint8Array(model.buffer.slice(model.byteOffset, model.byteOffset + model.byteLength));
  if (typeof model === 'string' && Object.hasOwn(MODELS, model)) {
    // A name: the authors' checkpoint, from their repository unless the caller says where.
    const m = MODELS[/** @type {keyof typeof MODELS} */ (model)];
    const base = modelBaseUrl ?? platform.defaultModelBase?.() ?? AUTHORS_BASE;
    const url = platform.join(base, m.checkpoint);
    const progress = onDownloadProgress === undefined ? undefined : /** @type {DownloadProgress} */ (safeCallback(onDownloadProgress, 'onDownloadProgress'));
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
/** @param {unknown} f @param {string} name @returns {(...args: unknown[]) => void} */
export function safeCallback(f, name) {
  if (typeof f !== 'function') throw new TypeError(`imdn: ${name} must be a function, got ${typeof f}`);
  return (...args) => {
    try {
      f(...args);
    } catch (e) {
      throw new Error(`imdn: ${name} threw: ${message(e)}`);
    }
  };
}

/**
 * A URL's bytes, or an imdn: error that names it ("cannot <verb> URL: why").
 * @param {string | URL} url @param {string} [verb]
 * @returns {Promise<Uint8Array>}
 */
export async function fetchBytes(url, verb = 'download') {
  return download(url, undefined, verb);
}

/**
 * Fetches a URL's bytes, reporting { loaded, total, url } (total: null when the server does not
 * say) as they arrive. Used by both platforms for remote models.
 * @param {string | URL} url @param {DownloadProgress} [onProgress] @param {string} [verb]
 * @returns {Promise<Uint8Array>}
 */
export async function download(url, onProgress, verb = 'download') {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    const cause = /** @type {{ cause?: unknown }} */ (e).cause;
    throw new Error(`imdn: cannot ${verb} ${url}: ${cause === undefined ? message(e) : message(cause)}`);
  }
  if (!response.ok) throw new Error(`imdn: cannot ${verb} ${url}: HTTP ${response.status}`);
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
    throw message(e).startsWith('imdn:') ? e : new Error(`imdn: download of ${url} failed: ${message(e)}`);
  }
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * A named model's bytes through a cache: the cached copy where its sha256 is `want`, else
 * downloaded (with progress) and cached when it matches. A cache that cannot be read or written
 * only costs a download. The digest is returned either way: the caller refuses a mismatch.
 * @param {string} url @param {string} want
 * @param {{ get(): Promise<Uint8Array | null>, put(bytes: Uint8Array): Promise<void>, drop(): Promise<void> }} cache
 * @param {((p: { loaded: number, total: number | null, url: string }) => void) | undefined} onProgress
 * @returns {Promise<{ bytes: Uint8Array, digest: string }>}
 */
export async function fetchThroughCache(url, want, cache, onProgress) {
  const hit = await cache.get().catch(() => null);
  if (hit) {
    const digest = await sha256(hit);
    if (digest === want) return { bytes: hit, digest };
    await cache.drop().catch(() => {});
  }
  const bytes = await download(url, onProgress);
  const digest = await sha256(bytes);
  if (digest === want) await cache.put(bytes).catch(() => {});
  return { bytes, digest };
}

/** Lower-case hex SHA-256 of bytes: WebCrypto where there is one, else plain JavaScript. */
/** @param {Uint8Array} bytes @returns {Promise<string>} */
export async function sha256(bytes) {
  const subtle = globalThis.crypto?.subtle;
  const hex = (/** @type {ArrayBuffer} */ buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
  if (subtle) return hex(await subtle.digest('SHA-256', /** @type {Uint8Array<ArrayBuffer>} */ (bytes)));
  return hex(sha256js(bytes)); // insecure browser contexts have no crypto.subtle
}

/** @param {Uint8Array} data @returns {ArrayBuffer} */
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
  const rot = (/** @type {number} */ x, /** @type {number} */ k) => (x >>> k) | (x << (32 - k));
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
