// 3x3 stride-1 convolution by Winograd F(4x4, 3x3): 36 multiplies per 4x4 outputs and channel
// pair instead of 144, 4x fewer (F(2x2, 3x3), 2.25x fewer, is kept as an option for tests and
// comparisons). Without fused multiply-add (WebAssembly SIMD128 here), XNNPACK's direct convolution
// already runs at the SIMD peak, so fewer multiplies is what is left.
//
//   WinogradConv3x3 conv(weights_oihw, bias_or_null, cin, cout, relu);
//   conv.run(in, in_stride, h, w, out, out_stride, pool);   // NHWC, "same" zero padding
//
// Per block of m x m-output tiles (a strip of tiles_per_block(m) tiles, so that its transformed
// inputs and products stay in L2): the input transform V = B^T d B ((m+2)^2 points per tile and
// channel), (m+2)^2 small matrix products M[xi] = V[xi] . U[xi] with the weights transformed once
// (U = G g G^T), and the output transform Y = A^T M A, plus bias and ReLU or LeakyReLU. All in one
// pass, so nothing but the input and output crosses memory. Accuracy: F(2x2)'s coefficients are 0,
// +-1 and 1/2 (outputs within about 1e-6 relative of direct summation); F(4x4)'s go up to 8 and
// 1/24 (about 2e-6 relative; against the authors' outputs on Set5 at most 4.2e-6 raw,
// tests/test_parity.cpp).
//
// Tiling (docs/plan.md): an output of F(2x2) is computed from its own receptive field only, but an output
// of F(4x4) from its tile's whole 6x6 input patch (the extra inputs cancel only in exact
// arithmetic), so in floating point it depends on inputs up to 4 px outside its receptive field and
// on where the tile grid lies: exact tiles need that much more halo and one grid for all crops.
#pragma once

#include <pthreadpool.h>

#include <cstddef>
#include <vector>

namespace imdn {

// Where an image's rows lie in a buffer: row y at ((y - y0) % cap) rows from its start. The
// default is the whole image, row y at y: run_rows over rings of rows streams an image down
// (stream.cpp: blocks streamed).
struct Rows {
  size_t y0 = 0, cap = size_t(-1);
  size_t at(size_t y) const { return (y - y0) % cap; }
};

class WinogradConv3x3 {
 public:
  // weights: (cout_all, cin_all, 3, 3) PyTorch layout; this convolution takes output channels
  // [o0, o0 + cout) and input channels [i0, i0 + cin) of it. bias: cout_all values or null.
  WinogradConv3x3(const float* weights, const float* bias, size_t cout_all, size_t cin_all, size_t o0, size_t cout,
                  size_t i0, size_t cin, bool relu, size_t m = kDefaultTile);

  // Bytes of scratch run() needs with this pool: each thread's transformed inputs and products.
  size_t scratch_bytes(pthreadpool_t pool) const;

  // in: h x w pixels, cin channels every in_stride floats; out: cout channels every out_stride.
  // scratch: scratch_bytes(pool), 64-byte aligned. With out2, output channels from `split` on go
  // there instead (every out2_stride floats): one input transform serves both halves of a
  // distillation step.
  void run(const float* in, size_t in_stride, size_t h, size_t w, float* out, size_t out_stride, pthreadpool_t pool,
           float* scratch, float* out2 = nullptr, size_t out2_stride = 0, size_t split = size_t(-1)) const;

  // As run(), for tile rows [ty0, ty1) only (output rows [m ty0, m ty1) of the h x w image, the
  // same values as run() gives them), with rows where in_rows, out_rows and out2_rows say. The
  // input rows those tiles read (one above, one below) must be there.
  void run_rows(const float* in, Rows in_rows, size_t in_stride, size_t h, size_t w, float* out, Rows out_rows,
                size_t out_stride, pthreadpool_t pool, float* scratch, size_t ty0, size_t ty1, float* out2 = nullptr,
                Rows out2_rows = {}, size_t out2_stride = 0, size_t split = size_t(-1)) const;

  // The output tile side m of F(m x m, 3x3): 2 or 4.
  size_t tile() const { return m_; }
  // LeakyReLU with this slope on the outputs (0: none), the same bits as ops::leaky_relu after it.
  void set_leaky(float slope) { leaky_ = slope; }

  static constexpr size_t kDefaultTile = 4;
  static constexpr size_t kTilesPerBlock = 32;   // F(2x2): 2x2 tiles per block (a strip 64 px wide)
  static constexpr size_t kTilesPerBlock4 = 32;  // F(4x4): 4x4 tiles per block (a strip 128 px wide)
  static constexpr size_t tiles_per_block(size_t m) { return m == 2 ? kTilesPerBlock : kTilesPerBlock4; }

 private:
  template <size_t m>
  void run_m(const float* in, Rows in_rows, size_t in_stride, size_t h, size_t w, float* out, Rows out_rows,
             size_t out_stride, pthreadpool_t pool, float* scratch, size_t ty0, size_t ty1, float* out2, Rows out2_rows,
             size_t out2_stride, size_t split) const;
  // Floats of one thread's scratch, rounded up to whole cache lines (no line shared by two).
  size_t per_thread() const {
    const size_t points = (m_ + 2) * (m_ + 2), tiles = tiles_per_block(m_);
    return (points * tiles * (cin4_ + cout8_) + 15) / 16 * 16;
  }

  size_t m_, cin_, cout_, cin4_, cout8_;
  bool relu_;
  float leaky_ = 0.f;
  std::vector<float> u_;     // (m+2)^2 x (cout8 / 8) x cin4 x 8: transformed weights, packed for the products
  std::vector<float> bias_;  // cout8
};

// A 1x1 convolution by the same products kernel (4 pixels x 8 outputs at a time), optionally added
// into its output: out (+)= W in + bias, adding in place instead of a pass over a separate result
// (faster than XNNPACK's 1x1 convolution and add in WebAssembly: README, Speed).
class PointwiseConv {
 public:
  // weights: (cout_all, cin_all) (PyTorch's 1x1 kernels); this takes output channels [o0, o0 + cout)
  // and input channels [i0, i0 + cin). bias: cout_all values or null.
  PointwiseConv(const float* weights, const float* bias, size_t cin_all, size_t o0, size_t cout, size_t i0, size_t cin);
  // pixels rows of cin channels every in_stride floats -> cout channels every out_stride.
  void run(const float* in, size_t in_stride, size_t pixels, float* out, size_t out_stride, bool accumulate,
           pthreadpool_t pool) const;

 private:
  size_t cin_, cout_, cout8_;
  std::vector<float> w_;     // (cout8 / 8) x cin x 8
  std::vector<float> bias_;  // cout8
};

}  // namespace imdn
