// The Node platform of the package (internal): how the core reads files and models, spawns
// worker_threads, counts cores and decodes inputs. node.js builds the public API on it; the test
// suite builds upscalers on variants of it (a worker that crashes, say).
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, homedir } from 'node:os';
import { join as joinPath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import createImdnModule from '../dist/imdn.js';
import { isPixels } from './core.js';
import { fetchBytes, fetchThroughCache, sha256 } from './model-source.js';
import { compileWasm, decodeWithModule, instantiate } from './engine.js';

const WASM = new URL('../dist/imdn.wasm', import.meta.url);
const WASM_THREADED = new URL('../dist/imdn-mt.wasm', import.meta.url);
const WORKER = new URL('./worker-node.js', import.meta.url);

/** @param {string | URL} src */
function isRemote(src) {
  const s = String(src);
  return s.startsWith('http://') || s.startsWith('https://');
}

/** @param {string | URL} src @returns {Promise<Uint8Array>} */
export async function readBytes(src) {
  if (isRemote(src)) return fetchBytes(src, 'load');
  const path = src instanceof URL || String(src).startsWith('file:') ? fileURLToPath(src) : String(src);
  try {
    return await readFile(path);
  } catch (e) {
    throw new Error(`imdn: cannot read ${path}: ${why(e)}`);
  }
}

/**
 * A file system error in words.
 * @param {unknown} e
 */
export function why(e) {
  const words = {
    ENOENT: 'no such file or folder',
    EISDIR: 'it is a folder, not a file',
    ENOTDIR: 'a part of the path is not a folder',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    ENOSPC: 'no space left on the device',
    EROFS: 'the file system is read-only',
  };
  const { code, message } = /** @type {{ code?: string, message?: string }} */ (e);
  return words[/** @type {keyof typeof words} */ (code)] ?? message ?? String(e);
}

/**
 * Where named models are cached: $IMDN_CACHE_DIR/models, else $XDG_CACHE_HOME/imdn-wasm/models,
 * else ~/.cache/imdn-wasm/models.
 */
export function modelCacheDir() {
  if (process.env.IMDN_CACHE_DIR) return joinPath(process.env.IMDN_CACHE_DIR, 'models');
  return joinPath(process.env.XDG_CACHE_HOME || joinPath(homedir(), '.cache'), 'imdn-wasm', 'models');
}

// A named model's file and its sha256: read where it is local; downloaded once and cached where
// it is remote (the cache keeps only files whose sha256 is the expected one).
/** @type {import('./platform.js').Platform['fetchModel']} */
async function fetchModel(url, { checkpoint, sha256: want, onProgress }) {
  if (!isRemote(url)) {
    const bytes = await readBytes(url);
    return { bytes, digest: await sha256(bytes) };
  }
  const file = joinPath(modelCacheDir(), `${want.slice(0, 16)}-${checkpoint}`);
  return fetchThroughCache(
    url,
    want,
    {
      get: () => readFile(file),
      put: async (bytes) => {
        await mkdir(modelCacheDir(), { recursive: true });
        const tmp = `${file}.${process.pid}.tmp`;
        await writeFile(tmp, bytes);
        await rename(tmp, file);
      },
      drop: async () => {},
    },
    onProgress,
  );
}

let mainModule = null;
/** The main thread's instance of the single-threaded module (decoding, encoding, converting). */
export async function module() {
  mainModule ??= compileWasm(WASM, readBytes).then((m) => instantiate(createImdnModule, m));
  return mainModule;
}

/** @type {import('./platform.js').Platform['toPixels']} */
async function toPixels(input, wasm, { maxInputPixels } = {}) {
  if (isPixels(input)) return input;
  let bytes;
  if (typeof input === 'string' || input instanceof URL) bytes = await readBytes(input);
  else if (input instanceof ArrayBuffer) bytes = new Uint8Array(input);
  else if (input instanceof Uint8Array) bytes = input;
  else throw new TypeError('imdn: unsupported input; pass a path, a Buffer or Uint8Array of an image file, or { data, width, height }');
  return decodeWithModule(wasm ?? (await module()), bytes, maxInputPixels ?? 0);
}

/** @type {import('./platform.js').Platform} */
export const platform = {
  cores: () => (typeof availableParallelism === 'function' ? availableParallelism() : cpus().length),
  readBytes,
  fetchModel,
  join: (base, file) => (isRemote(base) || base instanceof URL ? new URL(file, String(base).replace(/\/?$/, '/')).href : joinPath(String(base), file)),
  defaultModelBase: () => process.env.IMDN_MODELS_DIR,
  factory: createImdnModule,
  files(baseUrl) {
    const base = baseUrl === undefined ? null : new URL(String(baseUrl).replace(/\/?$/, '/'), `file://${process.cwd()}/`);
    return base
      ? { wasm: new URL('dist/imdn.wasm', base), wasmThreaded: new URL('dist/imdn-mt.wasm', base), worker: WORKER, workerThreaded: WORKER }
      : { wasm: WASM, wasmThreaded: WASM_THREADED, worker: WORKER, workerThreaded: WORKER };
  },
  spawnWorker(url) {
    // The host's flags (--expose-gc, --input-type, a loader, ...) are for its main script, not
    // for the package's workers: some are refused in workers (ERR_WORKER_INVALID_EXEC_ARGV).
    const w = new Worker(url ?? WORKER, { execArgv: [] });
    let terminated = false;
    /** @type {(message: string) => void} */
    let failed = () => {};
    return {
      post: (m, t) => w.postMessage(m, /** @type {any[]} */ (t)),
      onMessage: (f) => w.on('message', f),
      onFailure: (f) => {
        failed = f;
        w.on('error', (e) => f(e.message));
        w.on('exit', (code) => {
          if (!terminated) failed(`worker exited with code ${code}`);
        });
      },
      // Idle workers must not keep the process alive; busy ones must.
      setBusy: (busy) => (busy ? w.ref() : w.unref()),
      terminate: () => {
        terminated = true;
        w.terminate();
      },
    };
  },
  toPixels,
};
