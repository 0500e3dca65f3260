// A CommonJS project's TypeScript (require), strict, no skipLibCheck.
import imdn = require('imdn-wasm');

async function main(): Promise<void> {
  const simd: boolean = imdn.hasWasmSimd();
  const up: imdn.Upscaler = await imdn.createUpscaler({ model: imdn.KNOWN_MODELS.x4 });
  const r: imdn.UpscaleResult = await up.upscale(Buffer.from([]));
  await imdn.writePng('out.png', r);
  console.log(simd);
}
void main();
