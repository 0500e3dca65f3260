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

}  // namespace

WinogradConv3x3::WinogradConv3x3(const float* weights, const float* bias, size_t cout_all, size_t cin_all, size_t o0,
                                 size_t cout, size_t i0, size_t cin, bool relu)
    : cin_(cin), cout_(cout), cin4_((cin + 3) / 4 * 4), cout8_((cout + 7) / 8 * 8), relu_(relu) {
  (void)cout_all;
  const size_t nb = cout8_ / 8;
  u_.assign(16 * nb * cin4_ * 8, 0.f);
  bias_.assign(cout8_, 0.f);
  // U = G g G^T with G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], in double, rounded once.
  const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  for (size_t o = 0; o < cout; ++o) {
    if (bias) bias_[o] = bias[o0 + o];
    for (size_t i = 0; i < cin; ++i) {
      const float* g = weights + ((o0 + o) * cin_all + i0 + i) * 9;
      double gg[4][3];
      for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 3; ++c) gg[r][c] = G[r][0] * g[c] + G[r][1] * g[3 + c] + G[r][2] * g[6 + c];
      for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 4; ++c) {
          const double u = gg[r][0] * G[c][0] + gg[r][1] * G[c][1] + gg[r][2] * G[c][2];
          u_[(((size_t(r) * 4 + c) * nb + o / 8) * cin4_ + i) * 8 + o % 8] = float(u);
        }
    }
  }
}

size_t WinogradConv3x3::scratch_bytes(pthreadpool_t pool) const {
  return threads_of(pool) * per_thread() * sizeof(float);
}

void WinogradConv3x3::run(const float* in, size_t in_stride, size_t h, size_t w, float* out, size_t out_stride,
                          pthreadpool_t pool, float* scratch, float* out2, size_t out2_stride, size_t split) const {
  if (out2 == nullptr) split = cout_;
  const size_t tiles_y = (h + 1) / 2, tiles_x = (w + 1) / 2;
  const size_t blocks_x = (tiles_x + kTilesPerBlock - 1) / kTilesPerBlock;
  const size_t nb = cout8_ / 8, cin = cin_, cin4 = cin4_, cout8 = cout8_, cout = cout_;
  const size_t groups = cin4 / 4, full_groups = cin / 4, tail_lanes = cin % 4;
  const float* u = u_.data();
  const float* bias = bias_.data();
  const bool relu = relu_;

  // Each thread's transformed inputs (V) and products (M), one block at a time.
  const size_t stride = per_thread();
  parallel(pool, tiles_y * blocks_x, [&](size_t thread, size_t job) {
    float* V = scratch + thread * stride;
    float* M = V + 16 * kTilesPerBlock * cin4;
    {
      const size_t ty = job / blocks_x, tx0 = (job % blocks_x) * kTilesPerBlock;
      const size_t nt = std::min(kTilesPerBlock, tiles_x - tx0);

      // Input transform: V[xi][t][c] = (B^T d B)[xi] for each tile's 4x4 input patch d.
      for (size_t t = 0; t < nt; ++t) {
        const long y0 = long(2 * ty) - 1, x0 = long(2 * (tx0 + t)) - 1;
        for (size_t g = 0; g < groups; ++g) {
          const size_t lanes = g < full_groups ? 4 : tail_lanes;
          v4 d[4][4];
          for (int r = 0; r < 4; ++r)
            for (int c = 0; c < 4; ++c) {
              const long yy = y0 + r, xx = x0 + c;
              if (yy < 0 || xx < 0 || yy >= long(h) || xx >= long(w)) {
                d[r][c] = splat(0.f);
              } else {
                const float* p = in + (size_t(yy) * w + size_t(xx)) * in_stride + g * 4;
                d[r][c] = lanes == 4 ? load(p) : load_partial(p, lanes);
              }
            }
          v4 s[4][4];
          for (int c = 0; c < 4; ++c) {  // B^T d: rows
            s[0][c] = d[0][c] - d[2][c];
            s[1][c] = d[1][c] + d[2][c];
            s[2][c] = d[2][c] - d[1][c];
            s[3][c] = d[1][c] - d[3][c];
          }
          for (int r = 0; r < 4; ++r) {  // (B^T d) B: columns
            const v4 v[4] = {s[r][0] - s[r][2], s[r][1] + s[r][2], s[r][2] - s[r][1], s[r][1] - s[r][3]};
            for (int c = 0; c < 4; ++c) store(V + ((size_t(r) * 4 + c) * kTilesPerBlock + t) * cin4 + g * 4, v[c]);
          }
        }
      }

      // Products: M[xi] (nt x cout8) = V[xi] (nt x cin) . U[xi] (cin x cout8), 4 tiles x 8 outputs
      // at a time.
      for (size_t xi = 0; xi < 16; ++xi) {
        const float* vx = V + xi * kTilesPerBlock * cin4;
        float* mx = M + xi * kTilesPerBlock * cout8;
        for (size_t t = 0; t < nt; t += 4) {
          const float* a0 = vx + t * cin4;
          const float* a1 = t + 1 < nt ? a0 + cin4 : a0;
          const float* a2 = t + 2 < nt ? a0 + 2 * cin4 : a0;
          const float* a3 = t + 3 < nt ? a0 + 3 * cin4 : a0;
          for (size_t n = 0; n < nb; ++n) {
            const float* b = u + ((xi * nb + n) * cin4) * 8;
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
            float* m = mx + t * cout8 + n * 8;
            store(m, c00);
            store(m + 4, c01);
            if (t + 1 < nt) store(m + cout8, c10), store(m + cout8 + 4, c11);
            if (t + 2 < nt) store(m + 2 * cout8, c20), store(m + 2 * cout8 + 4, c21);
            if (t + 3 < nt) store(m + 3 * cout8, c30), store(m + 3 * cout8 + 4, c31);
          }
        }
      }

      // Output transform: Y = A^T M A (2x2 per tile), + bias, ReLU, into the output.
      for (size_t t = 0; t < nt; ++t) {
        const size_t oy = 2 * ty, ox = 2 * (tx0 + t);
        for (size_t co = 0; co < cout; co += 4) {
          const size_t lanes = std::min<size_t>(4, cout - co);
          v4 m[4][4];
          for (int r = 0; r < 4; ++r)
            for (int c = 0; c < 4; ++c) m[r][c] = load(M + ((size_t(r) * 4 + c) * kTilesPerBlock + t) * cout8 + co);
          v4 s[2][4];
          for (int c = 0; c < 4; ++c) {
            s[0][c] = m[0][c] + m[1][c] + m[2][c];
            s[1][c] = m[1][c] - m[2][c] - m[3][c];
          }
          const v4 bv = load(bias + co);
          for (int r = 0; r < 2; ++r) {
            if (oy + r >= h) break;
            const v4 y[2] = {s[r][0] + s[r][1] + s[r][2] + bv, s[r][1] - s[r][2] - s[r][3] + bv};
            for (int c = 0; c < 2; ++c) {
              if (ox + c >= w) break;
              v4 v = y[c];
              if (relu) v = (v4)((v4i)v & (v > splat(0.f)));  // casts between vectors reinterpret bits
              const size_t pix = (oy + r) * w + ox + c;
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
                float lane[4];
                store(lane, v);
                for (size_t l = 0; l < lanes; ++l) {
                  const size_t ch = co + l;
                  if (ch < split)
                    out[pix * out_stride + ch] = lane[l];
                  else
                    out2[pix * out2_stride + ch - split] = lane[l];
                }
              }
            }
          }
        }
      }
    }
  });
}

}  // namespace imdn
