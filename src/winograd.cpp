#include "winograd.h"

#include <algorithm>
#include <cstring>

namespace imdn {

namespace {

// Four floats, as one SIMD register: SSE natively, v128 in WebAssembly (clang and GCC vector
// extensions compile to both).
typedef float v4 __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));

inline v4 load(const float* p) {
  v4 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void store(float* p, v4 v) { std::memcpy(p, &v, sizeof(v)); }
inline v4 splat(float x) { return v4{x, x, x, x}; }

// n (< 4) floats, the rest zero.
inline v4 load_partial(const float* p, size_t n) {
  float t[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < n; ++i) t[i] = p[i];
  return load(t);
}
inline void store_partial(float* p, v4 v, size_t n) {
  float t[4];
  store(t, v);
  for (size_t i = 0; i < n; ++i) p[i] = t[i];
}

size_t threads_of(pthreadpool_t pool) {
  return pool == nullptr ? 1 : std::max<size_t>(1, pthreadpool_get_threads_count(pool));
}

// Runs f(thread, i) for i in [0, n), split across the pool; thread < threads_of(pool).
template <typename F>
void parallel(pthreadpool_t pool, size_t n, const F& f) {
  if (threads_of(pool) <= 1 || n <= 1) {
    for (size_t i = 0; i < n; ++i) f(size_t(0), i);
    return;
  }
  pthreadpool_parallelize_1d_with_thread(
      pool, [](void* context, size_t thread, size_t i) { (*static_cast<const F*>(context))(thread, i); },
      const_cast<F*>(&f), n, 0);
}

// The products' kernel: c[2r], c[2r+1] = row r's (a_r) 8 sums over k < cin of a_r[k] * b[k][0..8],
// b packed 8 floats a k. One k at a time, each row's value broadcast from memory: V8 keeps the eight
// sums in registers. (Four k per load with the lanes broadcast in registers is slower: clang groups
// that by sum, and the sums spill; docs/kernels.md.) Each sum runs over k in order, a multiply then
// an add (no fused multiply-add in SIMD128).
inline void dot4x8(const float* a0, const float* a1, const float* a2, const float* a3, const float* b, size_t cin,
                   v4* c) {
  v4 c00 = splat(0), c01 = splat(0), c10 = splat(0), c11 = splat(0);
  v4 c20 = splat(0), c21 = splat(0), c30 = splat(0), c31 = splat(0);
  for (size_t k = 0; k < cin; ++k) {
    const v4 b0 = load(b + k * 8), b1 = load(b + k * 8 + 4);
    const v4 x0 = splat(a0[k]), x1 = splat(a1[k]), x2 = splat(a2[k]), x3 = splat(a3[k]);
    c00 += x0 * b0;
    c01 += x0 * b1;
    c10 += x1 * b0;
    c11 += x1 * b1;
    c20 += x2 * b0;
    c21 += x2 * b1;
    c30 += x3 * b0;
    c31 += x3 * b1;
  }
  c[0] = c00, c[1] = c01, c[2] = c10, c[3] = c11, c[4] = c20, c[5] = c21, c[6] = c30, c[7] = c31;
}

// The batched products of one block: for each of the K2 transform points xi,
// M[xi] (nt x cout8) = V[xi] (nt x cin4) . U[xi] (cin4 x cout8), 4 tiles x 8 outputs at a time.
// V and M are tile-major ([t][xi][channel]): the transforms read or write one tile's points from
// one contiguous run (point-major, a tile's 36 points sat 4 KiB apart, all in one set of the L1
// cache), and the products only need four row pointers.
void products(const float* V, float* M, const float* u, size_t K2, size_t nt, size_t cin, size_t cin4, size_t nb,
              size_t cout8) {
  const size_t vt = K2 * cin4, mt = K2 * cout8;  // floats from one tile's rows to the next's
  for (size_t xi = 0; xi < K2; ++xi) {
    const float* vx = V + xi * cin4;
    float* mx = M + xi * cout8;
    for (size_t t = 0; t < nt; t += 4) {
      const float* a0 = vx + t * vt;
      const float* a1 = t + 1 < nt ? a0 + vt : a0;
      const float* a2 = t + 2 < nt ? a0 + 2 * vt : a0;
      const float* a3 = t + 3 < nt ? a0 + 3 * vt : a0;
      for (size_t n = 0; n < nb; ++n) {
        v4 c[8];
        dot4x8(a0, a1, a2, a3, u + ((xi * nb + n) * cin4) * 8, cin, c);
        float* m = mx + t * mt + n * 8;
        for (size_t r = 0; r < 4 && t + r < nt; ++r) store(m + r * mt, c[2 * r]), store(m + r * mt + 4, c[2 * r + 1]);
      }
    }
  }
}

// One output pixel's group of `lanes` (<= 4) channels from co: into out, or past the split into
// out2 (a distillation step's two halves), after ReLU or LeakyReLU if asked.
inline void put(v4 v, bool relu, float leaky, size_t pix, size_t co, size_t lanes, float* out, size_t out_stride,
                float* out2, size_t out2_stride, size_t split) {
  if (relu) v = (v4)((v4i)v & (v > splat(0.f)));  // casts between vectors reinterpret bits
  if (leaky != 0.f) {                             // as ops::leaky_relu: v < v * slope ? v * slope : v, bit for bit
    const v4 sv = v * splat(leaky);
    const v4i lt = v < sv;
    v = (v4)(((v4i)sv & lt) | ((v4i)v & ~lt));
  }
  if (co + lanes <= split) {
    float* p = out + pix * out_stride + co;
    if (lanes == 4)
      store(p, v);
    else
      store_partial(p, v, lanes);
  } else if (co >= split) {
    float* p = out2 + pix * out2_stride + (co - split);
    if (lanes == 4)
      store(p, v);
    else
      store_partial(p, v, lanes);
  } else {  // the group straddles the split
    float lane_v[4];
    store(lane_v, v);
    for (size_t l = 0; l < lanes; ++l) {
      const size_t ch = co + l;
      if (ch < split)
        out[pix * out_stride + ch] = lane_v[l];
      else
        out2[pix * out2_stride + ch - split] = lane_v[l];
    }
  }
}

}  // namespace

WinogradConv3x3::WinogradConv3x3(const float* weights, const float* bias, size_t cout_all, size_t cin_all, size_t o0,
                                 size_t cout, size_t i0, size_t cin, bool relu, size_t m)
    : m_(m == 2 ? 2 : 4), cin_(cin), cout_(cout), cin4_((cin + 3) / 4 * 4), cout8_((cout + 7) / 8 * 8), relu_(relu) {
  (void)cout_all;
  const size_t nb = cout8_ / 8, K = m_ + 2;
  u_.assign(K * K * nb * cin4_ * 8, 0.f);
  bias_.assign(cout8_, 0.f);
  // U = G g G^T, in double, rounded once. F(2x2): G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1];
  // F(4x4) (points 0, +-1, +-2, infinity): the G of Lavin and Gray.
  const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  const double G4[6][3] = {{1. / 4, 0, 0},
                           {-1. / 6, -1. / 6, -1. / 6},
                           {-1. / 6, 1. / 6, -1. / 6},
                           {1. / 24, 1. / 12, 1. / 6},
                           {1. / 24, -1. / 12, 1. / 6},
                           {0, 0, 1}};
  auto G = [&](size_t r, size_t c) { return m_ == 2 ? G2[r][c] : G4[r][c]; };
  for (size_t o = 0; o < cout; ++o) {
    if (bias) bias_[o] = bias[o0 + o];
    for (size_t i = 0; i < cin; ++i) {
      const float* g = weights + ((o0 + o) * cin_all + i0 + i) * 9;
      double gg[6][3];
      for (size_t r = 0; r < K; ++r)
        for (int c = 0; c < 3; ++c) gg[r][c] = G(r, 0) * g[c] + G(r, 1) * g[3 + c] + G(r, 2) * g[6 + c];
      for (size_t r = 0; r < K; ++r)
        for (size_t c = 0; c < K; ++c) {
          const double u = gg[r][0] * G(c, 0) + gg[r][1] * G(c, 1) + gg[r][2] * G(c, 2);
          u_[(((r * K + c) * nb + o / 8) * cin4_ + i) * 8 + o % 8] = float(u);
        }
    }
  }
}

size_t WinogradConv3x3::scratch_bytes(pthreadpool_t pool) const {
  return threads_of(pool) * per_thread() * sizeof(float);
}

namespace {

// The 1-D transforms of F(m x m, 3x3), applied to rows, then columns: B^T (input, m + 2 points) and
// A^T (output, m + 2 products -> m values).
template <size_t m>
struct Transforms;

template <>
struct Transforms<2> {
  static void input(const v4* x, size_t step, v4* y) {
    const v4 x0 = x[0], x1 = x[step], x2 = x[2 * step], x3 = x[3 * step];
    y[0] = x0 - x2, y[1] = x1 + x2, y[2] = x2 - x1, y[3] = x1 - x3;
  }
  static void output(const v4* x, size_t step, v4* y) {
    const v4 x0 = x[0], x1 = x[step], x2 = x[2 * step], x3 = x[3 * step];
    y[0] = x0 + x1 + x2, y[1] = x1 - x2 - x3;
  }
};

// Lavin and Gray's, points 0, +-1, +-2.
template <>
struct Transforms<4> {
  static void input(const v4* x, size_t step, v4* y) {
    const v4 four = splat(4.f), five = splat(5.f), two = splat(2.f);
    const v4 x0 = x[0], x1 = x[step], x2 = x[2 * step], x3 = x[3 * step], x4 = x[4 * step], x5 = x[5 * step];
    const v4 t0 = x4 - four * x2, t1 = four * x1 - x3, t2 = x4 - x2, t3 = two * (x1 - x3);
    y[0] = four * x0 - five * x2 + x4;
    y[1] = t0 - t1, y[2] = t0 + t1, y[3] = t2 - t3, y[4] = t2 + t3;
    y[5] = four * x1 - five * x3 + x5;
  }
  static void output(const v4* x, size_t step, v4* y) {
    const v4 two = splat(2.f), four = splat(4.f), eight = splat(8.f);
    const v4 x0 = x[0], x5 = x[5 * step];
    const v4 a = x[step] + x[2 * step], b = x[step] - x[2 * step], c = x[3 * step] + x[4 * step],
             d = x[3 * step] - x[4 * step];
    y[0] = x0 + a + c, y[1] = b + two * d, y[2] = a + four * c, y[3] = b + eight * d + x5;
  }
};

// Everything one block of tiles needs, copied into the block's own locals before use: read through
// the lambda's references instead, clang must reload each of them after every store into the
// output (it could alias them), a large share of the output transform's time (docs/kernels.md).
struct BlockArgs {
  const float* in;
  size_t in_stride, h, w;
  float* out;
  size_t out_stride;
  float* out2;
  size_t out2_stride, split;
  Rows in_rows, out_rows, out2_rows;
  size_t ty0;
  const float* u;
  const float* bias;
  bool relu;
  float leaky;
  size_t cin, cin4, cout, cout8, tiles_x, blocks_x;
  float* scratch;
  size_t scratch_stride;
};

// Output transform of a block's nt tiles: Y = A^T M A (m x m per tile), + bias, activation, into
// the output rows (run_block's second half; inlined into it).
template <size_t m>
inline __attribute__((always_inline)) void output_tiles(const BlockArgs& a, const float* M, size_t nt, size_t ty,
                                                        size_t tx0, float* const* out_row, float* const* out2_row) {
  constexpr size_t K = m + 2, K2 = K * K;
  using F = Transforms<m>;
  const size_t h = a.h, w = a.w, cout = a.cout, cout8 = a.cout8;
  for (size_t t = 0; t < nt; ++t) {
    const size_t oy = m * ty, ox = m * (tx0 + t);
    for (size_t co = 0; co < cout; co += 4) {
      const size_t lanes = std::min<size_t>(4, cout - co);
      v4 s[m][K];
      for (size_t c = 0; c < K; ++c) {  // A^T M, a column at a time
        v4 p[K], col[m];
        for (size_t r = 0; r < K; ++r) p[r] = load(M + (t * K2 + r * K + c) * cout8 + co);
        F::output(p, 1, col);
        for (size_t r = 0; r < m; ++r) s[r][c] = col[r];
      }
      const v4 bv = load(a.bias + co);
      for (size_t r = 0; r < m && oy + r < h; ++r) {
        v4 y[m];
        F::output(s[r], 1, y);  // (A^T M) A: columns
        for (size_t c = 0; c < m && ox + c < w; ++c)
          put(y[c] + bv, a.relu, a.leaky, ox + c, co, lanes, out_row[r], a.out_stride, out2_row[r], a.out2_stride,
              a.split);
      }
    }
  }
}

// One block of T tiles of F(m x m, 3x3) (job: its strip and first tile), on this thread's scratch.
template <size_t m, size_t T>
void run_block(const BlockArgs& args, size_t thread, size_t job) {
  constexpr size_t K = m + 2, K2 = K * K;
  using F = Transforms<m>;
  const BlockArgs a = args;
  const size_t h = a.h, w = a.w, cin = a.cin, cin4 = a.cin4, cout8 = a.cout8, nb = cout8 / 8;
  const size_t groups = cin4 / 4, full_groups = cin / 4, tail_lanes = cin % 4;
  float* V = a.scratch + thread * a.scratch_stride;
  float* M = V + K2 * T * cin4;
  const size_t ty = a.ty0 + job / a.blocks_x, tx0 = (job % a.blocks_x) * T;
  const size_t nt = std::min(T, a.tiles_x - tx0);
  // The tile row's K input rows (null: outside the image, zero padding) and m output rows.
  const long y0 = long(m * ty) - 1;
  const float* in_row[K];
  for (size_t r = 0; r < K; ++r) {
    const long yy = y0 + long(r);
    in_row[r] = yy < 0 || yy >= long(h) ? nullptr : a.in + a.in_rows.at(size_t(yy)) * w * a.in_stride;
  }
  float *out_row[m], *out2_row[m];
  for (size_t r = 0; r < m; ++r) {
    const bool row = m * ty + r < h;
    out_row[r] = row ? a.out + a.out_rows.at(m * ty + r) * w * a.out_stride : nullptr;
    out2_row[r] = row && a.out2 ? a.out2 + a.out2_rows.at(m * ty + r) * w * a.out2_stride : nullptr;
  }

  // Input transform: V[t][xi][c] = (B^T d B)[xi] for each tile's K x K input patch d.
  for (size_t t = 0; t < nt; ++t) {
    const long x0 = long(m * (tx0 + t)) - 1;
    const bool inside = y0 >= 0 && x0 >= 0 && y0 + long(K) <= long(h) && x0 + long(K) <= long(w);
    for (size_t g = 0; g < groups; ++g) {
      const size_t lanes = g < full_groups ? 4 : tail_lanes;
      // B^T d, a column at a time (rows r of column c of d), then (B^T d) B a row at a time: at most
      // one column of inputs and the K x K intermediate live at once.
      v4 s[K][K];
      for (size_t c = 0; c < K; ++c) {
        v4 d[K], col[K];
        if (inside && lanes == 4) {  // most tiles: no bounds to check
          const size_t at = (size_t(x0) + c) * a.in_stride + g * 4;
          for (size_t r = 0; r < K; ++r) d[r] = load(in_row[r] + at);
        } else {
          const long xx = x0 + long(c);
          for (size_t r = 0; r < K; ++r) {
            const long yy = y0 + long(r);
            if (yy < 0 || xx < 0 || yy >= long(h) || xx >= long(w)) {
              d[r] = splat(0.f);
            } else {
              const float* p = in_row[r] + size_t(xx) * a.in_stride + g * 4;
              d[r] = lanes == 4 ? load(p) : load_partial(p, lanes);
            }
          }
        }
        F::input(d, 1, col);
        for (size_t r = 0; r < K; ++r) s[r][c] = col[r];
      }
      for (size_t r = 0; r < K; ++r) {
        v4 v[K];
        F::input(s[r], 1, v);
        for (size_t c = 0; c < K; ++c) store(V + (t * K2 + r * K + c) * cin4 + g * 4, v[c]);
      }
    }
  }

  products(V, M, a.u, K2, nt, cin, cin4, nb, cout8);

  output_tiles<m>(a, M, nt, ty, tx0, out_row, out2_row);
}

}  // namespace

void WinogradConv3x3::run(const float* in, size_t in_stride, size_t h, size_t w, float* out, size_t out_stride,
                          pthreadpool_t pool, float* scratch, float* out2, size_t out2_stride, size_t split) const {
  run_rows(in, {}, in_stride, h, w, out, {}, out_stride, pool, scratch, 0, (h + m_ - 1) / m_, out2, {}, out2_stride,
           split);
}

void WinogradConv3x3::run_rows(const float* in, Rows in_rows, size_t in_stride, size_t h, size_t w, float* out,
                               Rows out_rows, size_t out_stride, pthreadpool_t pool, float* scratch, size_t ty0,
                               size_t ty1, float* out2, Rows out2_rows, size_t out2_stride, size_t split) const {
  if (out2 == nullptr) split = cout_;
  if (m_ == 2)
    run_m<2>(in, in_rows, in_stride, h, w, out, out_rows, out_stride, pool, scratch, ty0, ty1, out2, out2_rows,
             out2_stride, split);
  else
    run_m<4>(in, in_rows, in_stride, h, w, out, out_rows, out_stride, pool, scratch, ty0, ty1, out2, out2_rows,
             out2_stride, split);
}

template <size_t m>
void WinogradConv3x3::run_m(const float* in, Rows in_rows, size_t in_stride, size_t h, size_t w, float* out,
                            Rows out_rows, size_t out_stride, pthreadpool_t pool, float* scratch, size_t ty0,
                            size_t ty1, float* out2, Rows out2_rows, size_t out2_stride, size_t split) const {
  constexpr size_t T = tiles_per_block(m);
  const size_t tiles_x = (w + m - 1) / m, blocks_x = (tiles_x + T - 1) / T;
  ty1 = std::min(ty1, (h + m - 1) / m);
  if (ty0 >= ty1) return;
  // Each thread's transformed inputs (V) and products (M), one block of T tiles at a time.
  const BlockArgs args{in,      in_stride, h,         w,       out,       out_stride,   out2,        out2_stride, split,
                       in_rows, out_rows,  out2_rows, ty0,     u_.data(), bias_.data(), relu_,       leaky_,      cin_,
                       cin4_,   cout_,     cout8_,    tiles_x, blocks_x,  scratch,      per_thread()};
  parallel(pool, (ty1 - ty0) * blocks_x, [&](size_t thread, size_t job) { run_block<m, T>(args, thread, job); });
}

PointwiseConv::PointwiseConv(const float* weights, const float* bias, size_t cin_all, size_t o0, size_t cout, size_t i0,
                             size_t cin)
    : cin_(cin), cout_(cout), cout8_((cout + 7) / 8 * 8) {
  w_.assign(cout8_ * cin, 0.f);
  bias_.assign(cout8_, 0.f);
  for (size_t o = 0; o < cout; ++o) {
    if (bias) bias_[o] = bias[o0 + o];
    for (size_t i = 0; i < cin; ++i) w_[((o / 8) * cin + i) * 8 + o % 8] = weights[(o0 + o) * cin_all + i0 + i];
  }
}

void PointwiseConv::run(const float* in, size_t in_stride, size_t pixels, float* out, size_t out_stride,
                        bool accumulate, pthreadpool_t pool) const {
  constexpr size_t kRows = 64;  // pixels a task
  const struct {
    const float* in;
    size_t in_stride, pixels;
    float* out;
    size_t out_stride;
    bool accumulate;
    const float* w;
    const float* bias;
    size_t nb, cin, cout;
  } args{in, in_stride, pixels, out, out_stride, accumulate, w_.data(), bias_.data(), cout8_ / 8, cin_, cout_};
  parallel(pool, (pixels + kRows - 1) / kRows, [&](size_t, size_t job) {
    const auto a = args;  // locals, not references the stores below could alias (BlockArgs)
    const size_t p_end = std::min(a.pixels, (job + 1) * kRows);
    for (size_t p = job * kRows; p < p_end; p += 4) {
      const size_t rows = std::min<size_t>(4, p_end - p);
      const float* a0 = a.in + p * a.in_stride;
      const float* a1 = rows > 1 ? a0 + a.in_stride : a0;
      const float* a2 = rows > 2 ? a0 + 2 * a.in_stride : a0;
      const float* a3 = rows > 3 ? a0 + 3 * a.in_stride : a0;
      for (size_t n = 0; n < a.nb; ++n) {
        v4 c[8];
        dot4x8(a0, a1, a2, a3, a.w + n * a.cin * 8, a.cin, c);
        for (size_t r = 0; r < rows; ++r)
          for (size_t h = 0; h < 2; ++h) {
            const size_t co = n * 8 + h * 4;
            if (co >= a.cout) break;
            const size_t lanes = std::min<size_t>(4, a.cout - co);
            float* o = a.out + (p + r) * a.out_stride + co;
            v4 v = c[2 * r + h] + load(a.bias + co);
            if (a.accumulate) v = (lanes == 4 ? load(o) : load_partial(o, lanes)) + v;
            if (lanes == 4)
              store(o, v);
            else
              store_partial(o, v, lanes);
          }
      }
    }
  });
}

}  // namespace imdn
