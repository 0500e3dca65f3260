// A web app that uses imdn-wasm as its README says: imported by name, built by a bundler with its
// default configuration (or served as is with an import map). The page's query names the model
// and image URLs, the workers and (for bundlers that do not follow new URL(..., import.meta.url))
// where the package's files are served.
import { createUpscaler, hasWasmSimd, KNOWN_MODELS } from 'imdn-wasm';

const params = new URLSearchParams(location.search);

async function main() {
  if (!hasWasmSimd()) throw new Error('no WebAssembly SIMD');
  const image = await (await fetch(params.get('image'))).blob();
  const up = await createUpscaler({
    model: params.get('model'),
    workers: Number(params.get('workers') ?? 2),
    ...(params.has('base') ? { baseUrl: params.get('base') } : {}),
  });
  let tiles = 0;
  const r = await up.upscale(image, { onProgress: () => tiles++ });
  let bytes = '';
  for (let i = 0; i < r.data.length; i += 0x8000) bytes += String.fromCharCode(...r.data.subarray(i, i + 0x8000));
  window.result = { width: r.width, height: r.height, data: btoa(bytes), threads: up.threads, workers: up.workers, progress: tiles, names: Object.keys(KNOWN_MODELS) };
  up.dispose();
}

main().then(
  () => (document.body.dataset.state = 'done'),
  (e) => {
    document.body.dataset.error = String(e?.message ?? e);
    document.body.dataset.state = 'error';
  },
);
