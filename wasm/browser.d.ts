// Types of the browser entry (import 'imdn-wasm' in a bundler, or the package's wasm/browser.js).
// These name DOM types: a page's TypeScript has lib "dom".
import type { Pixels, Upscaler as UpscalerOf, UpscalerOptions, UpscaleResult, KnownModel } from './types.js';

export type * from './types.js';

/** What upscale() accepts in a browser: decoded pixels, or anything the browser can draw. */
export type ImageInput = Pixels | ImageData | Blob | ImageBitmap | HTMLImageElement | HTMLCanvasElement | OffscreenCanvas;

export type Upscaler = UpscalerOf<ImageInput>;

/** Loads the WebAssembly module and the model (validating it), and returns an upscaler. */
export function createUpscaler(options: UpscalerOptions): Promise<Upscaler>;

/** Whether this browser has WebAssembly SIMD, which imdn-wasm needs. */
export function hasWasmSimd(): boolean;

/** Known model names and their file names. */
export const KNOWN_MODELS: Readonly<Record<KnownModel, string>>;

/** A result as ImageData, for putImageData or createImageBitmap. */
export function toImageData(result: UpscaleResult): ImageData;
