// A Node ES module script: node app.mjs MODEL IMAGE OUT.png
import { createUpscaler, hasWasmSimd, KNOWN_MODELS, readImage, writePng } from 'imdn-wasm';

const [model, image, out] = process.argv.slice(2);
const up = await createUpscaler({ model, workers: 2 });
const r = await up.upscale(await readImage(image));
await writePng(out, r);
up.dispose();
console.log(JSON.stringify({ simd: hasWasmSimd(), names: Object.keys(KNOWN_MODELS), threads: up.threads, width: r.width, height: r.height }));
