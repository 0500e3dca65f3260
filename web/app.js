// The demo page: the package used as a web app uses it. Everything runs in this tab and its workers.
import { createUpscaler, hasWasmSimd, KNOWN_MODELS } from 'imdn-wasm';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// Where the authors' checkpoints are: ?models=URL (a folder of IMDN_x4.pth, model_RTC.pth, ...),
// else the package fetches them from the authors' repository (once: they are cached).
const modelBase = params.has('models') ? new URL(params.get('models'), location.href).href : undefined;

const state = {
  image: null, // { name, pixels: ImageData, bitmap }
  upscaler: null,
  upscalerKey: '',
  controller: null,
  result: null,
  elapsedMs: 0,
  progress: null,
  painted: 0, // output tiles painted as they finished, this run
  download: '', // what a model download has reached, while it runs
};
window.imdnDemo = state; // for the browser tests and the curious

function setState(name) {
  document.body.dataset.state = name;
}

function showError(message) {
  const box = $('error');
  box.textContent = message;
  box.hidden = !message;
}

// ---------------------------------------------------------------------------------------------
// Input

async function loadFile(file) {
  showError('');
  if (!file) return;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  } catch {
    state.image = null;
    $('run').disabled = true;
    $('input-info').textContent = '';
    showError(`“${file.name || 'pasted data'}” is not an image this browser can open.`);
    setState('error');
    return;
  }
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  state.image = { name: file.name || 'pasted', pixels: ctx.getImageData(0, 0, bitmap.width, bitmap.height), bitmap };
  $('input-info').textContent = `${state.image.name}: ${bitmap.width} × ${bitmap.height}`;
  $('run').disabled = false;
  setState('ready');
}

$('file').addEventListener('change', (e) => loadFile(e.target.files[0]));
const drop = $('drop');
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  loadFile(e.dataTransfer.files[0]);
});
document.addEventListener('paste', (e) => {
  const item = [...(e.clipboardData?.items ?? [])].find((i) => i.type.startsWith('image/'));
  if (item) loadFile(item.getAsFile());
});

// ---------------------------------------------------------------------------------------------
// Settings

$('workers').value = navigator.hardwareConcurrency || 4;
$('model').addEventListener('change', () => {
  $('as-scale').hidden = $('model').value !== 'as';
});
$('model-base').textContent = modelBase ?? "the authors' repository (Zheng222/IMDN, cached after the first use)";

const simd = hasWasmSimd();
$('simd').textContent = simd ? 'WebAssembly SIMD: available' : 'WebAssembly SIMD: missing — this browser cannot run imdn-wasm';
$('simd').classList.add(simd ? 'ok' : 'bad');
$('cores').textContent = `${navigator.hardwareConcurrency || '?'} cores`;

// IMDN-AS output size from "1.5" (a scale) or "1920px" / "1920" (a width).
function targetSize(w, h) {
  const text = $('target').value.trim().toLowerCase();
  const n = Number.parseFloat(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error('Type a scale such as 1.5, or a width such as 1920px.');
  const scale = text.endsWith('px') || n > 16 ? n / w : n;
  const tw = Math.max(1, Math.round(w * scale));
  const th = Math.max(1, Math.round(h * scale));
  if (tw * th > 64e6) throw new Error(`An output of ${tw} × ${th} is too large for this page.`);
  return { targetWidth: tw, targetHeight: th };
}

async function upscalerFor(model, workers, tileSize, exact) {
  const key = `${model}|${workers}|${tileSize}|${exact}`;
  if (state.upscaler && state.upscalerKey === key) return state.upscaler;
  state.upscaler?.dispose();
  state.upscaler = null;
  try {
    const onDownloadProgress = ({ loaded, total }) => {
      const mib = (n) => (n / 2 ** 20).toFixed(1);
      state.download = `Downloading ${KNOWN_MODELS[model]}: ${mib(loaded)}${total ? ` of ${mib(total)}` : ''} MiB`;
    };
    state.upscaler = await createUpscaler({ model, ...(modelBase ? { modelBaseUrl: modelBase } : {}), onDownloadProgress, workers, tileSize, exact });
  } catch (e) {
    throw new Error(
      `The model could not be loaded (${KNOWN_MODELS[model]} from ${modelBase ?? "the authors' repository"}): ${e.message.replace(/^imdn: /, '')}`,
    );
  }
  state.upscalerKey = key;
  return state.upscaler;
}

// ---------------------------------------------------------------------------------------------
// Running

let ticker = 0;
function progress(p, started) {
  $('bar-fill').style.width = `${p.total ? (100 * p.done) / p.total : 0}%`;
  const pct = p.total ? Math.floor((100 * p.done) / p.total) : 0;
  if (!p.total && state.download) {
    $('progress-text').textContent = state.download; // the model is still on its way
    return;
  }
  $('progress-text').textContent = `${p.tiles.done} / ${p.tiles.total} tiles · ${pct}% · ${((performance.now() - started) / 1000).toFixed(1)} s`;
}

$('run').addEventListener('click', async () => {
  if (!state.image) return;
  showError('');
  const { pixels } = state.image;
  const model = $('model').value;
  const workers = Math.max(1, Math.min(64, Number($('workers').value) || 1));
  const tileSize = Number($('tile').value);
  const exact = $('exact').value === 'exact';
  let options = {};
  try {
    if (model === 'as') options = targetSize(pixels.width, pixels.height);
  } catch (e) {
    showError(e.message);
    return;
  }

  $('run').disabled = true;
  $('cancel').hidden = false;
  $('progress').hidden = false;
  $('download').disabled = true;
  setState('running');
  const started = performance.now();
  state.progress = { done: 0, total: 0, tiles: { done: 0, total: 0 } };
  state.painted = 0;
  progress(state.progress, started);
  ticker = setInterval(() => progress(state.progress, started), 100);
  state.controller = new AbortController();

  try {
    const up = await upscalerFor(model, workers, tileSize, exact);
    state.download = '';
    const out = up.outputSize(pixels.width, pixels.height, options);
    prepareCanvases(out.width, out.height);
    const ctx = $('output').getContext('2d');
    const result = await up.upscale(pixels, {
      ...options,
      signal: state.controller.signal,
      onProgress: (p) => {
        state.progress = p;
        // Paint a finished output tile straight from the growing result.
        const { tile, output } = p;
        if (tile) {
          ctx.putImageData(new ImageData(output.data, output.width, output.height), 0, 0, tile.x, tile.y, tile.width, tile.height);
          state.painted++;
        }
      },
    });
    state.elapsedMs = performance.now() - started;
    state.result = result;
    progress(state.progress, started);
    $('status').textContent =
      `${pixels.width} × ${pixels.height} → ${result.width} × ${result.height} in ${(state.elapsedMs / 1000).toFixed(2)} s with ${up.info.arch}, ${up.threads > 1 ? `${up.threads} threads` : `${workers} worker${workers > 1 ? 's' : ''}`}`;
    $('download').disabled = false;
    setState('done');
  } catch (e) {
    if (e.name === 'AbortError') {
      $('progress-text').textContent = 'Cancelled.';
      setState('cancelled');
    } else {
      showError(e.message.replace(/^imdn: /, ''));
      setState('error');
    }
  } finally {
    clearInterval(ticker);
    $('run').disabled = !state.image;
    $('cancel').hidden = true;
    state.controller = null;
  }
});

$('cancel').addEventListener('click', () => state.controller?.abort());

// ---------------------------------------------------------------------------------------------
// Output and comparison

function prepareCanvases(w, h) {
  $('output-card').hidden = false;
  const out = $('output');
  out.width = w;
  out.height = h;
  out.getContext('2d').clearRect(0, 0, w, h);
  $('status').textContent = '';
  drawBefore(w, h);
}

function drawBefore(w, h) {
  const before = $('before');
  const mode = $('reference').value;
  const { pixels } = state.image;
  before.classList.toggle('pixelated', mode === 'pixelated');
  if (mode === 'pixelated') {
    // Input pixels as they are; CSS scales them with nearest neighbour.
    before.width = pixels.width;
    before.height = pixels.height;
    before.getContext('2d').putImageData(pixels, 0, 0);
  } else {
    before.width = w;
    before.height = h;
    before.getContext('2d').putImageData(bicubic(pixels, w, h), 0, 0);
  }
}

$('reference').addEventListener('change', () => state.image && drawBefore($('output').width, $('output').height));

$('slider').addEventListener('input', (e) => {
  const v = e.target.value;
  $('after-clip').style.clipPath = `inset(0 0 0 ${v}%)`;
  $('divider').style.left = `${v}%`;
});

$('download').addEventListener('click', () => {
  $('output').toBlob((blob) => {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `${state.image.name.replace(/\.[^.]*$/, '')}-${$('model').value}.png`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }, 'image/png');
});

// Bicubic (Keys, a = -0.5) resize of RGBA ImageData, separable, for the "before" view.
function bicubic(src, w, h) {
  const kernel = (x) => {
    const a = Math.abs(x);
    if (a <= 1) return 1.5 * a ** 3 - 2.5 * a ** 2 + 1;
    if (a < 2) return -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2;
    return 0;
  };
  const taps = (inLen, outLen) => {
    const t = [];
    for (let o = 0; o < outLen; o++) {
      const u = ((o + 0.5) * inLen) / outLen - 0.5;
      const f = Math.floor(u);
      const idx = [];
      const wt = [];
      for (let k = -1; k <= 2; k++) {
        idx.push(Math.min(inLen - 1, Math.max(0, f + k)));
        wt.push(kernel(u - (f + k)));
      }
      t.push([idx, wt]);
    }
    return t;
  };
  const sw = src.width;
  const sh = src.height;
  const tx = taps(sw, w);
  const ty = taps(sh, h);
  const mid = new Float32Array(sw * h * 4);
  for (let y = 0; y < h; y++) {
    const [idx, wt] = ty[y];
    for (let x = 0; x < sw; x++) {
      for (let c = 0; c < 4; c++) {
        let v = 0;
        for (let k = 0; k < 4; k++) v += wt[k] * src.data[(idx[k] * sw + x) * 4 + c];
        mid[(y * sw + x) * 4 + c] = v;
      }
    }
  }
  const out = new ImageData(w, h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [idx, wt] = tx[x];
      for (let c = 0; c < 4; c++) {
        let v = 0;
        for (let k = 0; k < 4; k++) v += wt[k] * mid[(y * sw + idx[k]) * 4 + c];
        out.data[(y * w + x) * 4 + c] = v;
      }
    }
  }
  return out;
}

setState('idle');
