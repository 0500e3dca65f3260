// The messages between the page's (or process's) thread and a worker of the pool: a request type
// and a reply type each, one union each way. The sender (pool.js) and the receiver
// (worker-core.js) both check against these (tsc with checkJs, strict).
//
//   init     the module and the model                      -> ready | init-error
//   upscale  a whole image, planned and run in the worker  -> progress* then job-result | error
//   unit     one unit of a job planned elsewhere (bytes)   -> unit-result | error
//            (held: sent while another runs there; kept until go or drop. stop: a shared flag;
//            set, the unit is dropped unrun)
//   go       run the held unit `id`                         -> as unit
//   drop     forget the held unit `id`                      -> error { message: 'imdn: dropped' }
import type { JobOptions, Rect } from './engine.js';
import type { MemoryPlan } from './types.js';

export interface InitRequest {
  type: 'init';
  wasm: WebAssembly.Module;
  model: ArrayBuffer;
  threads: number;
  /** An instance whose memory grew past this asks to be replaced after its job (job-result.recycle). */
  recycleBytes?: number;
}
export interface UpscaleRequest {
  type: 'upscale';
  id: number;
  pixels: ArrayBuffer;
  width: number;
  height: number;
  channels: number;
  options: JobOptions;
  /** Progress messages with each finished tile's pixels (the caller watches the result fill). */
  progress: boolean;
  /** A shared flag: set, the job stops at its next unit. */
  cancel: Int32Array | null;
}
export interface UnitRequest {
  type: 'unit';
  id: number;
  data: Uint8Array;
  held?: boolean;
  stop?: Int32Array;
}
export interface GoRequest {
  type: 'go';
  id: number;
}
export interface DropRequest {
  type: 'drop';
  id: number;
}
export type ToWorker = InitRequest | UpscaleRequest | UnitRequest | GoRequest | DropRequest;
/** A request as the pool is given it, before it adds the id. */
export type Unsent<T extends ToWorker> = T extends { id: number } ? Omit<T, 'id'> & { id?: number } : T;

export interface ReadyReply {
  type: 'ready';
}
export interface InitErrorReply {
  type: 'init-error';
  message: string;
}
export interface ProgressReply {
  type: 'progress';
  id: number;
  done: number;
  total: number;
  tiles: number;
  tile: Rect | null;
  /** The finished tile's pixels (UpscaleRequest.progress), else null. */
  pixels: Uint8ClampedArray | Float32Array | null;
}
export interface UnitResult {
  type: 'unit-result';
  id: number;
  data: Uint8Array;
}
export interface JobResult {
  type: 'job-result';
  id: number;
  width: number;
  height: number;
  channels: number;
  /** Null when the tiles' pixels went with the progress messages. */
  data: Uint8ClampedArray | Float32Array | null;
  memory: MemoryPlan;
  /** The instance grew past recycleBytes: replace the worker. */
  recycle: boolean;
  /** Its WebAssembly memory now. */
  memoryBytes: number;
}
export interface ErrorReply {
  type: 'error';
  id: number;
  message: string;
  /** The instance cannot go on (a trap): the pool replaces the worker. */
  fatal: boolean;
}
export type FromWorker = ReadyReply | InitErrorReply | ProgressReply | UnitResult | JobResult | ErrorReply;

/** A worker's end: how it receives requests and sends replies. */
export interface Port {
  post(message: FromWorker, transfer?: Transferable[]): void;
  listen(f: (message: ToWorker) => void): void;
}

/** The pool's end of a worker (Platform.spawnWorker). */
export interface WorkerHandle {
  post(message: ToWorker, transfer?: Transferable[]): void;
  onMessage(f: (message: FromWorker) => void): void;
  onFailure(f: (message: string) => void): void;
  /** Node: an idle worker must not keep the process alive. */
  setBusy(busy: boolean): void;
  terminate(): void;
}
