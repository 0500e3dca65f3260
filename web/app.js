// The demo page: the package used as a web app uses it. Everything runs in this tab and its workers.
import { createUpscaler, hasWasmSimd, KNOWN_MODELS } from 'imdn-wasm';

/**
 * A canvas's 2D context (null only where the canvas has another kind already: never here).
 * @template T
 * @param {T | null} c @returns {T}
 */
function context(c) {
  if (!c) throw new Error('demo: no 2D context');
  return c;
}

/** A thrown value's message, without the package's prefix. @param {unknown} e */
const messageOf = (e) => (e instanceof Error ? e.message : String(e)).replace(/^imdn: /, '');

/**
 * The page's element of this id, checked to be of this type.
 * @template {HTMLElement} T
 * @param {string} id @param {{ new (): T, name: string }} type
 * @returns {T}
 */
function element(id, type) {
  const e = document.getElementById(id);
  if (!(e instanceof type)) throw new Error(`demo: #${id} is not a ${type.name}`);
  return e;
}
const ui = {
  afterClip: element('after-clip', HTMLElement),
  asScale: element('as-scale', HTMLLabelElement),
  barFill: element('bar-fill', HTMLElement),
  before: element('before', HTMLCanvasElement),
  cancel: element('cancel', HTMLButtonElement),
  cores: element('cores', HTMLElement),
  divider: element('divider', HTMLElement),
  download: element('download', HTMLButtonElement),
  drop: element('drop', HTMLLabelElement),
  error: element('error', HTMLElement),
  exact: element('exact', HTMLSelectElement),
  file: element('file', HTMLInputElement),
  inputInfo: element('input-info', HTMLElement),
  model: element('model', HTMLSelectElement),
  modelBase: element('model-base', HTMLElement),
  output: element('output', HTMLCanvasElement),
  outputCard: element('output-card', HTMLElement),
  progress: element('progress', HTMLElement),
  progressText: element('progress-text', HTMLElement),
  reference: element('reference', HTMLSelectElement),
  run: element('run', HTMLButtonElement),
  simd: element('simd', HTMLElement),
  slider: element('slider', HTMLInputElement),
  status: element('status', HTMLElement),
  target: element('target', HTMLInputElement),
  tile: element('tile', HTMLSelectElement),
  workers: element('workers', HTMLInputElement),
};
const params = new URLSearchParams(location.search);
// Where the authors' checkpoints are: ?models=URL (a folder of IMDN_x4.pth, model_RTC.pth, ...),
// else the package fetches them from the authors' repository (once: they are cached).
const modelBase = params.has('models') ? new URL(String(params.get('models')), location.href).href : undefined;

/**
 * @typedef {import('imdn-wasm').Upscaler} Upscaler
 * @typedef {{ done: number, total: number, tiles: { done: number, total: number } }} Shown
 */
/**
 * What the page holds; window.imdnDemo for the browser tests and the curious.
 * @type {{ image: { name: string, pixels: ImageData, bitmap: ImageBitmap } | null, upscaler: Upscaler | null,
 *   upscalerKey: string, controller: AbortController | null, result: import('imdn-wasm').UpscaleResult | null,
 *   elapsedMs: number, progress: Shown, painted: number, download: string }}
 */
const state = {
  image: null,
  upscaler: null,
  upscalerKey: '',
  controller: null,
  result: null,
  elapsedMs: 0,
  progress: { done: 0, total: 0, tiles: { done: 0, total: 0 } },
  painted: 0, // output tiles painted as they finished, this run
  download: '', // what a model download has reached, while it runs
};
/** @type {any} */ (window).imdnDemo = state;

/** @param {string} name */
function setState(name) {
  document.body.dataset.state = name;
}

/** @param {string} message */
function showError(message) {
  const box = ui.error;
  box.textContent = message;
  box.hidden = !message;
}

// ---------------------------------------------------------------------------------------------
// Input

/** @param {File | null | undefined} file */
async function loadFile(file) {
  showError('');
  if (!file) return;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  } catch {
    state.image = null;
    ui.run.disabled = true;
    ui.inputInfo.textContent = '';
    showError(`“${file.name || 'pasted data'}” is not an image this browser can open.`);
    setState('error');
    return;
  }
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = context(canvas.getContext('2d', { willReadFrequently: true }));
  ctx.drawImage(bitmap, 0, 0);
  const image = { name: file.name || 'pasted', pixels: ctx.getImageData(0, 0, bitmap.width, bitmap.height), bitmap };
  state.image = image;
  ui.inputInfo.textContent = `${image.name}: ${bitmap.width} × ${bitmap.height}`;
  ui.run.disabled = false;
  setState('ready');
}

ui.file.addEventListener('change', () => loadFile(ui.file.files?.[0]));
const drop = ui.drop;
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  loadFile(e.dataTransfer?.files[0]);
});
document.addEventListener('paste', (e) => {
  const item = [...(e.clipboardData?.items ?? [])].find((i) => i.type.startsWith('image/'));
  if (item) loadFile(item.getAsFile());
});

// ---------------------------------------------------------------------------------------------
// Settings

ui.workers.value = String(navigator.hardwareConcurrency || 4);
ui.model.addEventListener('change', () => {
  ui.asScale.hidden = ui.model.value !== 'as';
});
ui.modelBase.textContent = modelBase ?? "the authors' repository (Zheng222/IMDN, cached after the first use)";

const simd = hasWasmSimd();
ui.simd.textContent = simd ? 'WebAssembly SIMD: available' : 'WebAssembly SIMD: missing — this browser cannot run imdn-wasm';
ui.simd.classList.add(simd ? 'ok' : 'bad');
ui.cores.textContent = `${navigator.hardwareConcurrency || '?'} cores`;

// IMDN-AS output size from "1.5" (a scale) or "1920px" / "1920" (a width).
/** @param {number} w @param {number} h */
function targetSize(w, h) {
  const text = ui.target.value.trim().toLowerCase();
  const n = Number.parseFloat(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error('Type a scale such as 1.5, or a width such as 1920px.');
  const scale = text.endsWith('px') || n > 16 ? n / w : n;
  const tw = Math.max(1, Math.round(w * scale));
  const th = Math.max(1, Math.round(h * scale));
  if (tw * th > 64e6) throw new Error(`An output of ${tw} × ${th} is too large for this page.`);
  return { targetWidth: tw, targetHeight: th };
}

/**
 * @param {string} model @param {number} workers @param {number} tileSize @param {boolean} exact
 * @returns {Promise<Upscaler>}
 */
async function upscalerFor(model, workers, tileSize, exact) {
  const key = `${model}|${workers}|${tileSize}|${exact}`;
  if (state.upscaler && state.upscalerKey === key) return state.upscaler;
  state.upscaler?.dispose();
  state.upscaler = null;
  /** @type {Upscaler} */
  let up;
  try {
    const file = KNOWN_MODELS[/** @type {import('imdn-wasm').KnownModel} */ (model)];
    const onDownloadProgress = (/** @type {{ loaded: number, total: number | null }} */ { loaded, total }) => {
      const mib = (/** @type {number} */ n) => (n / 2 ** 20).toFixed(1);
      state.download = `Downloading ${file}: ${mib(loaded)}${total ? ` of ${mib(total)}` : ''} MiB`;
    };
    up = await createUpscaler({ model, ...(modelBase ? { modelBaseUrl: modelBase } : {}), onDownloadProgress, workers, tileSize, exact });
  } catch (e) {
    throw new Error(
      `The model could not be loaded (${KNOWN_MODELS[/** @type {import('imdn-wasm').KnownModel} */ (model)]} from ${modelBase ?? "the authors' repository"}): ${messageOf(e)}`,
    );
  }
  state.upscaler = up;
  state.upscalerKey = key;
  return up;
}

// ---------------------------------------------------------------------------------------------
// Running

/** @type {ReturnType<typeof setInterval> | undefined} */
let ticker;
/** @param {Shown} p @param {number} started */
function progress(p, started) {
  ui.barFill.style.width = `${p.total ? (100 * p.done) / p.total : 0}%`;
  const pct = p.total ? Math.floor((100 * p.done) / p.total) : 0;
  if (!p.total && state.download) {
    ui.progressText.textContent = state.download; // the model is still on its way
    return;
  }
  ui.progressText.textContent = `${p.tiles.done} / ${p.tiles.total} tiles · ${pct}% · ${((performance.now() - started) / 1000).toFixed(1)} s`;
}

ui.run.addEventListener('click', async () => {
  const image = state.image;
  if (!image) return;
  showError('');
  const { pixels } = image;
  const model = ui.model.value;
  const workers = Math.max(1, Math.min(64, Number(ui.workers.value) || 1));
  const tileSize = Number(ui.tile.value);
  const exact = ui.exact.value === 'exact';
  /** @type {{ targetWidth?: number, targetHeight?: number }} */
  let options = {};
  try {
    if (model === 'as') options = targetSize(pixels.width, pixels.height);
  } catch (e) {
    showError(messageOf(e));
    return;
  }

  ui.run.disabled = true;
  ui.cancel.hidden = false;
  ui.progress.hidden = false;
  ui.download.disabled = true;
  setState('running');
  const started = performance.now();
  state.progress = { done: 0, total: 0, tiles: { done: 0, total: 0 } };
  state.painted = 0;
  progress(state.progress, started);
  ticker = setInterval(() => progress(state.progress, started), 100);
  const controller = new AbortController();
  state.controller = controller;

  try {
    const up = await upscalerFor(model, workers, tileSize, exact);
    state.download = '';
    const out = up.outputSize(pixels.width, pixels.height, options);
    prepareCanvases(out.width, out.height);
    const ctx = context(ui.output.getContext('2d'));
    const result = await up.upscale(pixels, {
      ...options,
      signal: controller.signal,
      onProgress: (/** @type {import('imdn-wasm').Progress} */ p) => {
        state.progress = p;
        // Paint a finished output tile straight from the growing result.
        const { tile, output } = p;
        if (tile) {
          ctx.putImageData(
            new ImageData(/** @type {Uint8ClampedArray<ArrayBuffer>} */ (output.data), output.width, output.height),
            0,
            0,
            tile.x,
            tile.y,
            tile.width,
            tile.height,
          );
          state.painted++;
        }
      },
    });
    state.elapsedMs = performance.now() - started;
    state.result = result;
    progress(state.progress, started);
    ui.status.textContent = `${pixels.width} × ${pixels.height} → ${result.width} × ${result.height} in ${(state.elapsedMs / 1000).toFixed(2)} s with ${up.info.arch}, ${up.threads > 1 ? `${up.threads} threads` : `${workers} worker${workers > 1 ? 's' : ''}`}`;
    ui.download.disabled = false;
    setState('done');
  } catch (e) {
    if (/** @type {{ name?: unknown }} */ (e)?.name === 'AbortError') {
      ui.progressText.textContent = 'Cancelled.';
      setState('cancelled');
    } else {
      showError(messageOf(e));
      setState('error');
    }
  } finally {
    clearInterval(ticker);
    ui.run.disabled = !state.image;
    ui.cancel.hidden = true;
    state.controller = null;
  }
});

ui.cancel.addEventListener('click', () => state.controller?.abort());

// ---------------------------------------------------------------------------------------------
// Output and comparison

/** @param {number} w @param {number} h */
function prepareCanvases(w, h) {
  ui.outputCard.hidden = false;
  const out = ui.output;
  out.width = w;
  out.height = h;
  context(out.getContext('2d')).clearRect(0, 0, w, h);
  ui.status.textContent = '';
  drawBefore(w, h);
}

/** @param {number} w @param {number} h */
function drawBefore(w, h) {
  const before = ui.before;
  const mode = ui.reference.value;
  if (!state.image) return;
  const { pixels } = state.image;
  before.classList.toggle('pixelated', mode === 'pixelated');
  if (mode === 'pixelated') {
    // Input pixels as they are; CSS scales them with nearest neighbour.
    before.width = pixels.width;
    before.height = pixels.height;
    context(before.getContext('2d')).putImageData(pixels, 0, 0);
  } else {
    before.width = w;
    before.height = h;
    context(before.getContext('2d')).putImageData(bicubic(pixels, w, h), 0, 0);
  }
}

ui.reference.addEventListener('change', () => state.image && drawBefore(ui.output.width, ui.output.height));

ui.slider.addEventListener('input', () => {
  const v = ui.slider.value;
  ui.afterClip.style.clipPath = `inset(0 0 0 ${v}%)`;
  ui.divider.style.left = `${v}%`;
});

ui.download.addEventListener('click', () => {
  ui.output.toBlob((blob) => {
    if (!blob || !state.image) return;
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `${state.image.name.replace(/\.[^.]*$/, '')}-${ui.model.value}.png`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }, 'image/png');
});

// Bicubic (Keys, a = -0.5) resize of RGBA ImageData, separable, for the "before" view.
/** @param {ImageData} src @param {number} w @param {number} h */
function bicubic(src, w, h) {
  const kernel = (/** @type {number} */ x) => {
    const a = Math.abs(x);
    if (a <= 1) return 1.5 * a ** 3 - 2.5 * a ** 2 + 1;
    if (a < 2) return -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2;
    return 0;
  };
  const taps = (/** @type {number} */ inLen, /** @type {number} */ outLen) => {
    /** @type {[number[], number[]][]} */
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
