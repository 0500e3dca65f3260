// Browser entry of the package: createUpscaler over Web Workers, with the browser's own decoders
// for Blob/File, ImageBitmap, <img> and canvas inputs.
//
// Every file the package loads at run time is named here or in worker-mt.js as
// new URL('<literal>', import.meta.url) (and the workers as new Worker(new URL(...))), the one form
// that Vite and webpack follow with no configuration: they bundle the workers and copy the .wasm.
// Where a bundler does not (esbuild, Rollup without plugins), serve the package's folder and pass
// `baseUrl`: the workers then load unbundled from there.
import createImdnModule from '../dist/imdn.js';
import { BROWSER_MEMORY_LIMIT, createUpscalerWith, isPixels, KNOWN_MODELS, MAX_PIXELS } from './core.js';
import { fetchBytes, fetchThroughCache } from './model-source.js';
import { DEFAULT_MAX_INPUT_PIXELS, decodeWithModule, hasWasmSimd } from './engine.js';

export { KNOWN_MODELS, hasWasmSimd };

function drawToPixels(source, width, height) {
  if (!width || !height) throw new RangeError('imdn: the image has no pixels');
  if (width * height > MAX_PIXELS) throw new RangeError(`imdn: image of ${width}x${height} pixels is too large`);
  const canvas =
    typeof OffscreenCanvas === 'function' ? new OffscreenCanvas(width, height) : Object.assign(document.createElement('canvas'), { width, height });
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(source, 0, 0);
  const d = ctx.getImageData(0, 0, width, height);
  return { data: d.data, width, height, channels: 4 };
}

// Files and Blobs decode in the module (stb_image), as under Node: the same pixels on every
// platform, exact colour under any alpha (a canvas premultiplies it), and the same limits against
// decode bombs. Formats stb does not read (WebP, AVIF, SVG, ...) go through the browser.
async function toPixels(input, wasm, { maxInputPixels } = {}) {
  if (isPixels(input)) return input; // ImageData or { data, width, height, channels? }
  if (typeof Blob === 'function' && input instanceof Blob) {
    const bytes = new Uint8Array(await input.arrayBuffer());
    try {
      return decodeWithModule(wasm, bytes, maxInputPixels ?? 0);
    } catch (e) {
      if (!/not of any known type/.test(e.message)) throw e;
    }
    let bitmap;
    try {
      bitmap = await createImageBitmap(input, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
    } catch {
      throw new Error(`imdn: cannot decode the image${input.name ? ` ${input.name}` : ''}: it is not an image this browser can read`);
    }
    try {
      const limit = maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS;
      if (bitmap.width * bitmap.height > limit) {
        throw new RangeError(`imdn: image of ${bitmap.width}x${bitmap.height} pixels is over the limit of ${limit} pixels; raise maxInputPixels if it is real`);
      }
      return drawToPixels(bitmap, bitmap.width, bitmap.height);
    } finally {
      bitmap.close();
    }
  }
  if (typeof HTMLCanvasElement === 'function' && input instanceof HTMLCanvasElement) {
    return { ...pick(input.getContext('2d').getImageData(0, 0, input.width, input.height)), channels: 4 };
  }
  if (typeof OffscreenCanvas === 'function' && input instanceof OffscreenCanvas) {
    return { ...pick(input.getContext('2d').getImageData(0, 0, input.width, input.height)), channels: 4 };
  }
  if (typeof ImageBitmap === 'function' && input instanceof ImageBitmap) return drawToPixels(input, input.width, input.height);
  if (typeof HTMLImageElement === 'function' && input instanceof HTMLImageElement) {
    if (!input.complete) await input.decode();
    return drawToPixels(input, input.naturalWidth, input.naturalHeight);
  }
  throw new TypeError('imdn: unsupported input; pass ImageData, ImageBitmap, a Blob or File, an <img>, a canvas, or { data, width, height }');
}

function pick(d) {
  return { data: d.data, width: d.width, height: d.height };
}

// A named model's file and its sha256, cached with the Cache API where the page has it (secure
// contexts); only files whose sha256 is the expected one are kept.
const CACHE = 'imdn-wasm-models-v1';
/** @type {import('./platform.js').Platform['fetchModel']} */
async function fetchModel(url, { sha256: want, onProgress }) {
  const cache = typeof caches === 'object' ? await caches.open(CACHE).catch(() => null) : null;
  return fetchThroughCache(
    url,
    want,
    {
      get: async () => {
        const hit = await cache?.match(url);
        return hit ? new Uint8Array(await hit.arrayBuffer()) : null;
      },
      put: async (bytes) => {
        await cache?.put(url, new Response(bytes, { headers: { 'Content-Type': 'application/octet-stream' } }));
      },
      drop: async () => {
        await cache?.delete(url);
      },
    },
    onProgress,
  );
}

// How many cores to use by default. navigator.hardwareConcurrency is the answer, but in WebKit
// (Safari, and every browser on iOS) it is clamped for privacy: 4 below 8 cores, else 8, whatever
// the machine has (WebKitGTK says 4 on a 2-core machine). There the count is measured once per
// page, while the module and the model load: as many probe workers as it claims spin a fixed loop
// together, and the cores are the claim scaled by how much longer that took than one probe alone
// (the lower of two rounds, after a warm-up; about 0.5 s). Where probes cannot start (a
// Content-Security-Policy without blob: workers) or take too long, the claim stands.
const claimedCores = () => (typeof navigator === 'object' && navigator.hardwareConcurrency) || 4;
let measured = null;
function measureCores() {
  const said = claimedCores();
  const ua = typeof navigator === 'object' ? String(navigator.userAgent) : '';
  if (!/AppleWebKit/.test(ua) || /Chrome\//.test(ua) || typeof Worker !== 'function' || said <= 1) return said;
  measured ??= probeCores(said).catch(() => said);
  return measured;
}

async function probeCores(said) {
  const source =
    'onmessage=(e)=>{const t=performance.now();let x=1;for(let i=0;i<e.data;i++)x=(Math.imul(x,1103515245)+12345)|0;postMessage([performance.now()-t,x])}';
  const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
  const probes = Array.from({ length: said }, () => new Worker(url));
  const spin = (w, n) =>
    new Promise((resolve, reject) => {
      w.onmessage = (e) => resolve(e.data[0]);
      w.onerror = () => reject(new Error('probe failed'));
      w.postMessage(n);
    });
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('probe timed out')), 5000);
  });
  try {
    return await Promise.race([
      timeout,
      (async () => {
        await Promise.all(probes.map((w) => spin(w, 1e7))); // compiled and tiered up in each
        // The lower of two rounds: a round can look faster than the machine is (a probe that
        // tiered up late ran slower alone); too few workers cost less than too many.
        let low = said;
        for (let round = 0; round < 2; round++) {
          const alone = await spin(probes[0], 1e7);
          const t = performance.now();
          await Promise.all(probes.map((w) => spin(w, 1e7)));
          low = Math.min(low, (said * alone) / (performance.now() - t));
        }
        return Math.max(1, Math.min(said, Math.round(low)));
      })(),
    ]);
  } finally {
    clearTimeout(timer);
    for (const w of probes) w.terminate();
    URL.revokeObjectURL(url);
  }
}

/** @type {import('./platform.js').Platform} */
const platform = {
  fetchModel,
  cores: claimedCores,
  measureCores,
  readBytes: (src) => fetchBytes(src, 'load'),
  join(base, file) {
    const b = String(base);
    return new URL(file, new URL(b.endsWith('/') ? b : `${b}/`, globalThis.location?.href)).href;
  },
  factory: createImdnModule,
  memoryLimit: BROWSER_MEMORY_LIMIT,
  files(baseUrl) {
    if (baseUrl === undefined) {
      return {
        wasm: new URL('../dist/imdn.wasm', import.meta.url),
        wasmThreaded: new URL('../dist/imdn-mt.wasm', import.meta.url),
        worker: null, // the literal new Worker(new URL(...)) in spawnWorker
        workerThreaded: null,
      };
    }
    const base = new URL(String(baseUrl).replace(/\/?$/, '/'), globalThis.location?.href);
    return {
      wasm: new URL('dist/imdn.wasm', base),
      wasmThreaded: new URL('dist/imdn-mt.wasm', base),
      worker: new URL('wasm/worker.js', base),
      workerThreaded: new URL('wasm/worker-mt.js', base),
    };
  },
  spawnWorker(url, threaded) {
    let w;
    if (url) w = new Worker(url, { type: 'module' });
    else if (threaded) w = new Worker(new URL('./worker-mt.js', import.meta.url), { type: 'module' });
    else w = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    return {
      post: (m, t) => w.postMessage(m, t),
      onMessage: (f) => w.addEventListener('message', (e) => f(e.data)),
      onFailure: (f) => {
        w.addEventListener('error', (e) => {
          e.preventDefault();
          // A worker script that cannot be loaded fails with an error event without a message.
          f(e.message || `the worker script did not load${url ? ` from ${url}` : ''}; if a bundler moved the package's files, pass baseUrl`);
        });
        w.addEventListener('messageerror', () => f('a message could not be read'));
      },
      setBusy: () => {},
      terminate: () => w.terminate(),
    };
  },
  toPixels,
};

/**
 * Creates an upscaler whose tiles run in Web Workers. See index.d.ts for the options.
 */
export function createUpscaler(options) {
  return createUpscalerWith(platform, options);
}

/** Wraps a result as ImageData, for putImageData or createImageBitmap. */
export function toImageData(result) {
  return new ImageData(result.data, result.width, result.height);
}
