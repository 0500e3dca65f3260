// A Node project's TypeScript: lib es2022 and @types/node only, strict, no skipLibCheck.
import { createUpscaler, hasWasmSimd, KNOWN_MODELS, readImage, writePng, type Progress, type Upscaler, type UpscaleResult } from 'imdn-wasm';
// @ts-expect-error toImageData is the browser entry's, not Node's
import { toImageData } from 'imdn-wasm';

const simd: boolean = hasWasmSimd();
const file: string = KNOWN_MODELS.x4;
const up: Upscaler = await createUpscaler({ model: 'x4', modelBaseUrl: './models', workers: 2, threads: true, wasm: new Uint8Array(0) });
const r: UpscaleResult = await up.upscale('photo.png', { onProgress: (p: Progress) => void p.tile?.width, signal: AbortSignal.timeout(1000) });
const raw = await up.upscale(await readImage(new URL('file:///x.png')), { raw: true });
const floats: Float32Array = raw.data;
await writePng('out.png', r);
// @ts-expect-error a Blob is what browsers pass; under Node it is a path, bytes or pixels
await up.upscale(new Blob([]));
console.log(simd, file, floats.length, toImageData);
