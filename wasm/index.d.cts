// Types of the CommonJS entry (require('imdn-wasm') under Node): the Node entry's functions, each
// returning a Promise (it loads the ES module on first use); hasWasmSimd and KNOWN_MODELS as in ES.
import type { DecodedImage, KnownModel, Location, Pixels, Upscaler as UpscalerOf, UpscalerOptions } from './types.js';

declare namespace imdn {
  export type CompiledWasm = import('./types.js').CompiledWasm;
  export type DecodedImage = import('./types.js').DecodedImage;
  export type KnownModel = import('./types.js').KnownModel;
  export type Location = import('./types.js').Location;
  export type ModelInfo = import('./types.js').ModelInfo;
  export type ModelSource = import('./types.js').ModelSource;
  export type Pixels = import('./types.js').Pixels;
  export type Progress = import('./types.js').Progress;
  export type RawUpscaleResult = import('./types.js').RawUpscaleResult;
  export type UpscaleOptions = import('./types.js').UpscaleOptions;
  export type UpscaleResult = import('./types.js').UpscaleResult;
  export type UpscalerOptions = import('./types.js').UpscalerOptions;
  export type ImageInput = Pixels | Location | ArrayBuffer | Uint8Array;
  export type Upscaler = UpscalerOf<ImageInput>;
}

declare const imdn: {
  createUpscaler(options: UpscalerOptions): Promise<imdn.Upscaler>;
  hasWasmSimd(): boolean;
  readonly KNOWN_MODELS: Readonly<Record<KnownModel, string>>;
  decodeImage(bytes: Uint8Array | ArrayBuffer, options?: { maxPixels?: number }): Promise<DecodedImage>;
  readImage(path: Location, options?: { maxPixels?: number }): Promise<DecodedImage>;
  encodePng(image: Pixels): Promise<Uint8Array>;
  writePng(path: string, image: Pixels): Promise<void>;
  convertModel(
    source: Location | Uint8Array | ArrayBuffer,
    options?: { f16?: boolean },
  ): Promise<{ data: Uint8Array; arch: imdn.ModelInfo['arch']; scale: number }>;
  modelCacheDir(): string;
};

export = imdn;
