// A CommonJS script: node app.cjs MODEL IMAGE OUT.png
const { createUpscaler, hasWasmSimd, KNOWN_MODELS, readImage, writePng } = require('imdn-wasm');

const [model, image, out] = process.argv.slice(2);
(async () => {
  const up = await createUpscaler({ model, workers: 2 });
  const r = await up.upscale(await readImage(image));
  await writePng(out, r);
  up.dispose();
  console.log(JSON.stringify({ simd: hasWasmSimd(), names: Object.keys(KNOWN_MODELS), threads: up.threads, width: r.width, height: r.height }));
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
