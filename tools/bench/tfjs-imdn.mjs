// IMDN (x2/x3/x4) built from TensorFlow.js ops with the weights of an .imdn file
// (models/FORMAT.md), as a peer for the benchmarks: the authors' architecture, op for op
// (Zheng222/IMDN, architecture.py and block.py), NHWC, so that its output can be checked against
// ours (within 1e-4) before it is timed.
//
//   const net = await tfjsImdn(readFileSync('build/models/IMDN_x4.imdn'), { threads: 1 });
//   const out = net.run(rgbNhwc, height, width);   // Float32Array, (h*r) x (w*r) x 3, [0,1] scale
//   net.dispose();

/**
 * Checks that `net` is our network: both run a 64x64 corner of `rgb` (side x side RGB bytes);
 * `ours(bytes, cs)` resolves to our raw output for a cs x cs image. Returns the largest
 * difference; throws past 1e-4. (A corner: TensorFlow.js sums the attention's statistics in
 * float32, which drifts past 1e-4 over 256x256 of noise, where ours sums in double.)
 * @param {{ run(rgb: Float32Array, h: number, w: number): Float32Array }} net @param {Uint8Array} rgb @param {number} side
 * @param {(bytes: Uint8Array, cs: number) => Promise<ArrayLike<number>>} ours
 */
export async function checkAgainst(net, rgb, side, ours) {
  const cs = Math.min(side, 64);
  const corner = new Uint8Array(cs * cs * 3);
  for (let y = 0; y < cs; y++) corner.set(rgb.subarray(y * side * 3, (y * side + cs) * 3), y * cs * 3);
  const mine = await ours(corner, cs);
  const theirs = net.run(
    Float32Array.from(corner, (v) => v / 255),
    cs,
    cs,
  );
  let diff = 0;
  for (let i = 0; i < mine.length; i++) diff = Math.max(diff, Math.abs(mine[i] - theirs[i]));
  if (!(diff <= 1e-4)) throw new Error(`TensorFlow.js's IMDN differs from ours by ${diff}: not the same network`);
  return diff;
}

/**
 * The tensors of an .imdn file: { info, tensors: Map(name -> { shape, data: Float32Array }) }.
 * @param {Uint8Array | ArrayBuffer} bytes
 */
export function readImdn(bytes) {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (String.fromCharCode(...b.subarray(0, 8)) !== 'IMDNWASM') throw new Error('not an .imdn file');
  const u32 = (/** @type {number} */ at) => view.getUint32(at, true);
  const info = { arch: u32(16), nf: u32(20), blocks: u32(24), scale: u32(28), upsample: u32(32), range: view.getFloat32(36, true) };
  const count = u32(48);
  /** @type {Map<string, { shape: number[], data: Float32Array }>} */
  const tensors = new Map();
  let at = 64;
  for (let t = 0; t < count; t++) {
    const len = view.getUint16(at, true);
    const name = String.fromCharCode(...b.subarray(at + 2, at + 2 + len));
    at += 2 + len;
    const dtype = b[at];
    const ndim = b[at + 1];
    at += 2;
    /** @type {number[]} */
    const shape = [];
    for (let i = 0; i < ndim; i++, at += 4) shape.push(u32(at));
    at = (at + 3) & ~3;
    const n = shape.reduce((x, y) => x * y, 1);
    const data = new Float32Array(n);
    if (dtype === 1) {
      for (let i = 0; i < n; i++) data[i] = view.getFloat32(at + 4 * i, true);
      at += 4 * n;
    } else {
      for (let i = 0; i < n; i++) data[i] = half(view.getUint16(at + 2 * i, true));
      at += 2 * n;
    }
    tensors.set(name, { shape, data });
  }
  return { info, tensors };
}

/** @param {number} h */
function half(h) {
  const e = (h >> 10) & 31;
  const m = h & 1023;
  const s = h & 0x8000 ? -1 : 1;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * @param {Uint8Array} imdnBytes an IMDN (x2/x3/x4) .imdn file
 * @param {{ threads?: number, wasmPaths?: string }} [options] threads for the wasm backend (1:
 *   single-threaded SIMD); wasmPaths: the folder its .wasm files are served from (browsers)
 */
export async function tfjsImdn(imdnBytes, { threads = 1, wasmPaths } = {}) {
  const tf = await import('@tensorflow/tfjs-core');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  if (wasmPaths) wasm.setWasmPaths(wasmPaths); // (a page: where its .wasm files are served)
  if (threads === 1) tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  wasm.setThreadsCount(threads);
  await tf.setBackend('wasm');
  await tf.ready();
  const { info, tensors } = readImdn(imdnBytes);
  if (info.arch !== 1) throw new Error('tfjsImdn: IMDN (x2/x3/x4) models only');
  const r = info.upsample;
  // PyTorch (out, in, kh, kw) -> TF (kh, kw, in, out); PixelShuffle's channel c*r*r + dy*r + dx ->
  // depthToSpace's (dy*r + dx)*3 + c for the last convolution.
  /** @typedef {{ f: import('@tensorflow/tfjs-core').Tensor4D, b: import('@tensorflow/tfjs-core').Tensor1D }} Conv */
  /** @param {string} name @param {((o: number) => number) | null} [perm] @returns {Conv} */
  const conv = (name, perm = null) => {
    const w = tensors.get(`${name}.weight`);
    if (!w) throw new Error(`tfjsImdn: no tensor ${name}.weight`);
    const bias = tensors.get(`${name}.bias`);
    const [O, I, KH, KW] = w.shape;
    const f = new Float32Array(KH * KW * I * O);
    const oo = (/** @type {number} */ o) => (perm ? perm(o) : o);
    for (let o = 0; o < O; o++)
      for (let i = 0; i < I; i++)
        for (let y = 0; y < KH; y++) for (let x = 0; x < KW; x++) f[((y * KW + x) * I + i) * O + oo(o)] = w.data[((o * I + i) * KH + y) * KW + x];
    const b = new Float32Array(O);
    if (bias) for (let o = 0; o < O; o++) b[oo(o)] = bias.data[o];
    return { f: tf.tensor4d(f, [KH, KW, I, O]), b: tf.tensor1d(b) };
  };
  const shuffle = (/** @type {number} */ o) => {
    const c = Math.floor(o / (r * r));
    const k = o % (r * r);
    return k * 3 + c;
  };
  /** @type {{ stem: Conv, fusion: Conv, lr: Conv, up: Conv, blocks: { c: Conv[], cca0: Conv, cca1: Conv, fuse: Conv }[] }} */
  const W = { stem: conv('stem.0'), fusion: conv('fusion'), lr: conv('lr'), up: conv('up', shuffle), blocks: [] };
  for (let i = 0; i < info.blocks; i++) {
    const p = `blocks.${i}.`;
    W.blocks.push({ c: [1, 2, 3, 4].map((k) => conv(`${p}c${k}`)), cca0: conv(`${p}cca.0`), cca1: conv(`${p}cca.1`), fuse: conv(`${p}fuse`) });
  }
  /** @param {import('@tensorflow/tfjs-core').Tensor} x @param {Conv} conv */
  const apply = (x, { f, b }) => tf.add(tf.conv2d(/** @type {import('@tensorflow/tfjs-core').Tensor4D} */ (x), f, 1, 'same'), b);
  const lrelu = (/** @type {import('@tensorflow/tfjs-core').Tensor} */ x) => tf.leakyRelu(x, 0.05);
  const nf = info.nf;
  const d = nf / 4;
  /** @param {import('@tensorflow/tfjs-core').Tensor} x @param {(typeof W)['blocks'][number]} B */
  const block = (x, B) => {
    // IMDModule: three distillation steps (split into d distilled and nf - d remaining channels),
    // a fourth convolution, the concatenation, contrast-aware channel attention, the 1x1 fusion.
    const out1 = lrelu(apply(x, B.c[0]));
    const [d1, r1] = tf.split(out1, [d, nf - d], 3);
    const out2 = lrelu(apply(r1, B.c[1]));
    const [d2, r2] = tf.split(out2, [d, nf - d], 3);
    const out3 = lrelu(apply(r2, B.c[2]));
    const [d3, r3] = tf.split(out3, [d, nf - d], 3);
    const out4 = apply(r3, B.c[3]);
    const cat = tf.concat([d1, d2, d3, out4], 3);
    const { mean, variance } = tf.moments(cat, [1, 2], true);
    const y = tf.add(tf.sqrt(variance), mean);
    const z = tf.sigmoid(apply(tf.relu(apply(y, B.cca0)), B.cca1));
    return tf.add(apply(tf.mul(cat, z), B.fuse), x);
  };
  return {
    info,
    version: tf.version_core,
    /** @param {Float32Array} rgb h x w x 3 in [0,1] @param {number} h @param {number} w @returns {Float32Array} */
    run(rgb, h, w) {
      return /** @type {Float32Array} */ (
        tf.tidy(() => {
          const x = tf.mul(tf.tensor4d(rgb, [1, h, w, 3]), info.range);
          const fea = apply(x, W.stem);
          const outs = [];
          let cur = fea;
          for (const B of W.blocks) {
            cur = block(cur, B);
            outs.push(cur);
          }
          const fused = lrelu(apply(tf.concat(outs, 3), W.fusion));
          const lr = tf.add(apply(fused, W.lr), fea);
          const up = tf.depthToSpace(/** @type {import('@tensorflow/tfjs-core').Tensor4D} */ (apply(lr, W.up)), r, 'NHWC');
          return tf.div(up, info.range).dataSync();
        })
      );
    },
    dispose() {
      tf.disposeVariables();
      for (const v of [W.stem, W.fusion, W.lr, W.up, ...W.blocks.flatMap((B) => [...B.c, B.cca0, B.cca1, B.fuse])]) {
        v.f.dispose();
        v.b.dispose();
      }
    },
  };
}
