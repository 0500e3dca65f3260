// What browser.js and node-platform.js give core.js: the platform-specific half of the package.
import type { WorkerHandle } from './protocol.js';

/** Pixels as the engine takes them: width * height * channels bytes. */
export interface Pixels {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  channels?: number;
}

/** Where the package's files are (undefined: the literal new URL(...) forms that bundlers follow). */
export interface Files {
  wasm: URL;
  wasmThreaded: URL;
  worker: URL | null;
  workerThreaded: URL | null;
}

/** A named model to fetch: its manifest entry and the caller's progress callback. */
export interface ModelRequest {
  name: string;
  checkpoint: string;
  sha256: string;
  onProgress?: (p: { loaded: number; total: number | null; url: string }) => void;
}

/** An Emscripten module factory (dist/imdn.js). */
export type Factory = (settings?: Record<string, unknown>) => Promise<any>;

export interface Platform {
  /** The cores this machine says it has. */
  cores(): number;
  /** Where the count is a guess (WebKit), measured once; else absent. */
  measureCores?(): number | Promise<number>;
  /** Bytes of a URL (browsers), or a path or URL (Node). */
  readBytes(src: string | URL): Promise<ArrayBuffer | Uint8Array>;
  /** A named model's bytes, read or downloaded (and cached where they match), with their sha256. */
  fetchModel(url: string, request: ModelRequest): Promise<{ bytes: Uint8Array; digest: string }>;
  join(base: string | URL, file: string): string;
  /** Node: $IMDN_MODELS_DIR. */
  defaultModelBase?(): string | undefined;
  factory: Factory;
  /** The platform's default memoryLimit. */
  memoryLimit?: number;
  files(baseUrl?: string | URL): Files;
  spawnWorker(url: URL | null, threaded: boolean): WorkerHandle;
  /** The caller's input (a path, bytes, a Blob, ImageData, ...) as pixels. */
  toPixels(input: unknown, module: any, limits?: { maxInputPixels?: number }): Promise<Pixels>;
}
