// A web app's TypeScript: lib dom, bundler resolution, strict, no skipLibCheck.
import { createUpscaler, hasWasmSimd, toImageData, type ImageInput, type Upscaler } from 'imdn-wasm';
// @ts-expect-error readImage is the Node entry's, not the browser's
import { readImage } from 'imdn-wasm';

const up: Upscaler = await createUpscaler({ model: '/models/IMDN_x4.imdn', baseUrl: '/imdn-wasm/' });
const input: ImageInput = new Blob([]);
const r = await up.upscale(input, { signal: new AbortController().signal });
const data: ImageData = toImageData(r);
const canvas = document.createElement('canvas');
await up.upscale(canvas);
// @ts-expect-error a file path is what Node takes; browsers take images
await up.upscale('photo.png');
console.log(hasWasmSimd(), data.width, readImage);
