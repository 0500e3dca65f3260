// Types shared by the package's entries (browser.d.ts, node.d.ts, index.d.cts). Nothing here names a
// DOM or Node type, so that every consumer's lib settings accept it; each entry says what image
// inputs it takes.

/**
 * A compiled WebAssembly.Module, where the consumer's lib declares WebAssembly (DOM, or
 * @types/node); otherwise nothing matches it and the module is passed as bytes or a location.
 */
export type CompiledWasm = typeof globalThis extends { WebAssembly: { Module: abstract new (...args: any) => infer M } } ? M : never;

/** A location: a URL string or, under Node, a file path; URL objects where the lib has them. */
export type Location = string | (typeof globalThis extends { URL: abstract new (...args: any) => infer U } ? U : never);

/** Pixels in memory: ImageData, or any interleaved 8-bit image. */
export interface Pixels {
  /** width * height * channels values, row by row. */
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  /** 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA. Default: data.length / (width * height). */
  channels?: 1 | 2 | 3 | 4;
}

/** Where a model comes from: a URL, a path (Node), bytes, or a known name resolved in modelBaseUrl. */
export type ModelSource = Location | ArrayBuffer | ArrayBufferView;

export interface UpscalerOptions {
  /**
   * The model (required): a known name, 'x2', 'x3', 'x4' (IMDN), 'as' (IMDN_AS), 'rtc' (IMDN_RTC),
   * 'rte' (IMDN_RTE): the authors' checkpoint, downloaded from their repository at a pinned commit
   * (or from modelBaseUrl), checked against its sha256 and cached (browsers: Cache API; Node:
   * $IMDN_CACHE_DIR/models, else ~/.cache/imdn-wasm/models), so a second use makes no request.
   * Or a model file's bytes, URL or (Node) path: the authors' .pth (either PyTorch format, any
   * file name: the network is recognised from its tensors) or an .imdn file (models/FORMAT.md).
   */
  model: ModelSource;
  /**
   * Where known names are found instead of the authors' repository: a URL or (Node) a folder
   * holding their files (IMDN_x4.pth, model_RTC.pth, ...). Default: under Node $IMDN_MODELS_DIR
   * if set; else the authors' repository.
   */
  modelBaseUrl?: Location;
  /** Called as a named model downloads: bytes so far, and in all (null if the server does not say). */
  onDownloadProgress?: (progress: { loaded: number; total: number | null; url: string }) => void;
  /**
   * How many cores to use. Where memory can be shared (see `threads`), one worker (Web Worker /
   * worker_threads) runs the threaded module on this many threads; otherwise this many workers,
   * each with one single-threaded WebAssembly instance, created when first needed. Default:
   * os.availableParallelism() under Node; navigator.hardwareConcurrency in browsers, except in
   * WebKit (Safari, every browser on iOS), which clamps it to 4 or 8 whatever the machine has:
   * there the cores are measured once per page (probe workers, about half a second, while the
   * module and the model load).
   */
  workers?: number;
  /**
   * Run the `workers` cores as threads of one WebAssembly instance (dist/imdn-mt.wasm: every
   * operator split across threads, exact tiling inside the instance, no halos or copies between
   * workers; about 1.8-2x one core on two). Needs SharedArrayBuffer: Node, or a browser page that
   * is cross-origin isolated (served with Cross-Origin-Opener-Policy: same-origin and
   * Cross-Origin-Embedder-Policy: require-corp). Default: whenever that holds and workers > 1
   * (falling back to single-threaded workers if the threaded module cannot be loaded).
   * true: refuse to start without it; false: always single-threaded workers.
   */
  threads?: boolean;
  /**
   * Tile side in input pixels (at least 16). Smaller tiles spread better over workers and need
   * less memory per worker, and cost more compute at their borders; with exact tiling the output
   * is the same bytes whatever the size. Default: 256 (a pool splits the image further so that
   * every worker gets a tile). One instance running the whole job (threads, or one worker) tiles
   * only the stem and the tail: where tiles would cut the image, its blocks stream down it a band
   * of rows at a time instead (no halos; MemoryPlan.streamed).
   */
  tileSize?: number;
  /**
   * Exact tiling (default true): the output is the same bytes as whole-image inference, for any
   * tile size, number of workers or threads (docs/plan.md). The network runs block by block over
   * all tiles; each block's contrast-aware attention uses the statistics of the whole image (one
   * barrier per block); the halo is 13 px per block on tiles (Winograd F(4x4): see the README for
   * the compute it adds; streamed blocks have none). The main thread's instance (threaded: the worker's) holds the feature maps:
   * 768 bytes per input pixel for IMDN as float32 (a 1024x1024 input: 768 MiB), 384 as float16,
   * 256 as float16 with the blocks recomputed (see memoryLimit), about a third of that for
   * RTC/RTE, a sixteenth for IMDN_AS.
   * false: every tile runs the whole network with a halo as wide as the receptive field (27 px
   * for IMDN): no feature maps kept (memory per tile only), more compute; for IMDN_RTC and
   * IMDN_RTE the same within float rounding, but with IMDN/IMDN_AS tiles smaller than the image
   * change pixels by up to a few levels, since their attention sees only the tile.
   */
  exact?: boolean;
  /**
   * The WebAssembly module: a compiled WebAssembly.Module, its bytes, or its URL (Node: or path).
   * Default: dist/imdn.wasm of this package, located with new URL(..., import.meta.url).
   */
  wasm?: CompiledWasm | ArrayBuffer | ArrayBufferView | Location;
  /**
   * The threaded module, likewise. Default: dist/imdn-mt.wasm of this package. Its JavaScript
   * (dist/imdn-mt.js and dist/imdn-mt.worker.js) must be served next to it.
   */
  wasmThreaded?: CompiledWasm | ArrayBuffer | ArrayBufferView | Location;
  /**
   * Where the package's own files are served, as a folder holding its wasm/ and dist/ (for
   * example a copy of node_modules/imdn-wasm at /imdn-wasm/): the workers and the .wasm files
   * are then loaded from there, unbundled. Only needed with bundlers that do not follow
   * new URL('...', import.meta.url) (esbuild, Rollup without plugins). Default: located next to
   * the package's code, as bundlers such as Vite and webpack arrange.
   */
  baseUrl?: Location;
  /**
   * Bytes one image may hold in the engine at once: its feature maps, input planes, one tile's
   * scratch and the output (float16 maps and the RGBA output live in ArrayBuffers beside the
   * WebAssembly instance: given back as soon as the job is done with them, and the output is the
   * result handed back, not a copy). Default under Node 369,098,752 (352 MiB: a 1024x1024
   * input at x4 fits, and the process then peaks near 460 MiB), in browsers 352,321,536 (336
   * MiB: the same input on smaller tiles, about 1.1x the time, and a Chromium tab peaks near 500
   * MiB); at most 3 GiB count (what one 32-bit WebAssembly instance can hold). Each image is
   * planned to fit: float32 maps where it can, else smaller tiles, else float16 maps (every tile
   * still computes in float32; against float32 maps about 0.2-1.7% of 8-bit values move by one
   * level, none by more), else float16 maps with each block's steps run twice instead of its
   * concatenation kept (a third less memory; about 1.4-1.7x the time with IMDN and IMDN_AS, the
   * same with RTC and RTE; see MemoryPlan.recompute). An image that does not fit
   * even so is refused before anything is allocated, with the size it would need
   * (`memoryNeeded` tells beforehand). WebAssembly memory never shrinks: an instance that grew
   * past 256 MiB (float32 maps live inside it) is replaced after its job, so that an idle
   * upscaler holds little.
   */
  memoryLimit?: number;
  /**
   * An instance (the threaded worker's, or this thread's, which holds a pool's maps) whose memory
   * grew past this many bytes is replaced by a fresh one after the call that grew it: the memory
   * goes back, and the next call starts a worker again (a few hundred milliseconds). Default
   * 268,435,456 (256 MiB); Infinity: never. (A worker whose instance holds more than 128 MiB
   * after a call is also replaced once it has been idle for 2 seconds, unless this is Infinity.)
   */
  recycleBytes?: number;
}

export interface Progress {
  /**
   * Units of work finished so far, and in all: one tile of one stage (stem, each block's steps,
   * tail), one chunk of a block's pointwise part, or 64 rows of a block streamed down the image
   * (MemoryPlan.streamed), on every path.
   */
  done: number;
  total: number;
  /**
   * Output tiles finished so far, and in all (alpha, when present, is a second pass), on every
   * path: the threaded instance reports its tiles as they finish too.
   */
  tiles: { done: number; total: number };
  /** The output tile this unit finished, in output pixels; null for units inside the network. */
  tile: { x: number; y: number; width: number; height: number } | null;
  /** The result being filled: the tiles finished so far are in place (for progressive display). */
  output: UpscaleResult | RawUpscaleResult;
}

export interface UpscaleOptions {
  /** Called after each finished tile. Default: none. */
  onProgress?: (progress: Progress) => void;
  /** Aborting rejects the call with an AbortError at once; the upscaler stays usable. Default: none. */
  signal?: AbortSignal;
  /** Override the upscaler's tileSize, exact and memoryLimit for this call. */
  tileSize?: number;
  exact?: boolean;
  memoryLimit?: number;
  /** IMDN_AS only: output size (bicubic resize to it, then restoration). Default: the input size. */
  targetWidth?: number;
  targetHeight?: number;
  /** Resolve to the network's raw RGB floats (unclamped, [0,1] scale) instead of bytes. Default: false. */
  raw?: boolean;
  /**
   * Largest image file decoded, in pixels (default 2^26 = 67,108,864, e.g. 8192 x 8192). A file
   * over it, or of a raw format (BMP, TGA, PNM, PSD) shorter than its dimensions need, is refused
   * from its header, before anything is allocated: decode bombs cost nothing.
   */
  maxInputPixels?: number;
}

/** What memoryNeeded() is asked about: the image's channels and the call's options. */
export type MemoryOptions = Pick<UpscaleOptions, 'tileSize' | 'exact' | 'memoryLimit' | 'targetWidth' | 'targetHeight' | 'raw'> & {
  /** 1-4; with 2 or 4 (alpha) the plan of a translucent image, the larger. Default: 3. */
  channels?: number;
};

/** How an image would be planned under the memory limit. */
export interface MemoryPlan {
  /** The most the image holds in the engine at once. */
  bytes: number;
  /** The limit it was planned under. */
  limit: number;
  /** false: upscale() refuses it (see `why`). */
  fits: boolean;
  /** How the feature maps are stored. */
  maps: 'float32' | 'float16';
  /**
   * true: each block's steps run twice instead of its concatenation being kept (a third less
   * memory for the maps; about 1.4-1.7x the time): with IMDN and IMDN_AS the last resort under
   * memoryLimit, after float16 maps. RTC and RTE, which have no attention, always plan so: their
   * steps then run once, faster than with the map kept. The same bytes as kept maps of the same
   * precision would give.
   */
  recompute: boolean;
  /**
   * true: and the blocks are streamed down the image a band of rows at a time, with no tiles'
   * halos to compute twice (what one instance running the whole job does: threads, or a single
   * worker; a pool of single-threaded workers is sent tiles). The same bytes as tiles.
   */
  streamed: boolean;
  /** The tile size it runs with, input pixels (streamed: the stem's and the tail's). */
  tileSize: number;
  /** The same image with float32 maps at the asked tile size (where that was tried). */
  float32Bytes?: number;
  /** Why it does not fit: what it would need. */
  why?: string;
}

/** An upscaled image: RGBA bytes, usable as ImageData (new ImageData(r.data, r.width, r.height)). */
export interface UpscaleResult {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}

/** With { raw: true }: RGB floats, width * height * 3. */
export interface RawUpscaleResult {
  width: number;
  height: number;
  channels: 3;
  data: Float32Array;
}

export interface ModelInfo {
  arch: 'IMDN' | 'IMDN_AS' | 'IMDN_RTC' | 'IMDN_RTE';
  nf: number;
  blocks: number;
  /** Output side / input side (1 for IMDN_AS). */
  scale: number;
  upsample: number;
  inputRange: number;
  receptiveRadius: number;
  sizeMultiple: number;
  alignment: number;
}

/** What every entry's upscaler does; `Input` is what that entry's upscale() accepts. */
export interface Upscaler<Input = Pixels> {
  readonly info: ModelInfo;
  /** The tile size calls use unless they say otherwise. */
  readonly tileSize: number;
  /** Threads per worker: `workers` when the threaded module runs, else 1. */
  readonly threads: number;
  /** Workers in the pool: 1 when threaded, else `workers`. */
  readonly workers: number;
  upscale(input: Input, options: UpscaleOptions & { raw: true }): Promise<RawUpscaleResult>;
  upscale(input: Input, options?: UpscaleOptions): Promise<UpscaleResult>;
  outputSize(width: number, height: number, options?: { targetWidth?: number; targetHeight?: number }): { width: number; height: number };
  /** What a width x height image would hold in the engine at once, and how it would be planned. */
  memoryNeeded(width: number, height: number, options?: MemoryOptions): MemoryPlan;
  /** The memoryLimit calls use unless they say otherwise. */
  readonly memoryLimit: number;
  /** Terminates the workers; calls still running reject. */
  dispose(): void;
}

/** Model names the package knows. */
export type KnownModel = 'x2' | 'x3' | 'x4' | 'as' | 'rtc' | 'rte';

/** A decoded image file. */
export type DecodedImage = Required<Pixels> & { bitDepth: number };
