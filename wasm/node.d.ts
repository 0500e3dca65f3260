// Types of the Node entry (import 'imdn-wasm' under Node). DOM-free: a Node project's lib and
// @types/node are enough.
import type { DecodedImage, KnownModel, Location, ModelInfo, Pixels, Upscaler as UpscalerOf, UpscalerOptions } from './types.js';

export type * from './types.js';

/**
 * What upscale() accepts under Node: decoded pixels, or an image file as a path, a file: URL, or
 * its bytes (PNG, JPEG, BMP, TGA, GIF, PSD, HDR, PNM; decoded by stb_image inside the module).
 */
export type ImageInput = Pixels | Location | ArrayBuffer | Uint8Array;

export type Upscaler = UpscalerOf<ImageInput>;

/** Loads the WebAssembly module and the model (validating it), and returns an upscaler. */
export function createUpscaler(options: UpscalerOptions): Promise<Upscaler>;

/** Whether this runtime has WebAssembly SIMD, which imdn-wasm needs. */
export function hasWasmSimd(): boolean;

/** Known model names and their file names. */
export const KNOWN_MODELS: Readonly<Record<KnownModel, string>>;

/** Decodes an image file's bytes. */
export function decodeImage(bytes: Uint8Array | ArrayBuffer, options?: { maxPixels?: number }): Promise<DecodedImage>;
/** Reads and decodes an image file. */
export function readImage(path: Location, options?: { maxPixels?: number }): Promise<DecodedImage>;
/** PNG bytes of an 8-bit image. */
export function encodePng(image: Pixels): Promise<Uint8Array>;
/** Writes an 8-bit image as a PNG file. */
export function writePng(path: string, image: Pixels): Promise<void>;
/**
 * A model file (the authors' .pth in either PyTorch format, or .imdn) as .imdn bytes; f16: values
 * stored as float16 (half the size).
 */
export function convertModel(
  source: Location | Uint8Array | ArrayBuffer,
  options?: { f16?: boolean },
): Promise<{ data: Uint8Array; arch: ModelInfo['arch']; scale: number }>;
/** Where named models are cached: $IMDN_CACHE_DIR/models, else $XDG_CACHE_HOME or ~/.cache, /imdn-wasm/models. */
export function modelCacheDir(): string;
