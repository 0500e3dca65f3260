// 3x3 stride-1 convolution by Winograd F(2x2, 3x3): 16 multiplies per 2x2 outputs and channel
// pair instead of 36, i.e. 2.25x fewer. Without fused multiply-add (WebAssembly SIMD128 here),
// XNNPACK's direct convolution already runs at the SIMD peak, so fewer multiplies is what is left.
//
//   WinogradConv3x3 conv(weights_oihw, bias_or_null, cin, cout, relu);
//   conv.run(in, in_stride, h, w, out, out_stride, pool);   // NHWC, "same" zero padding
//
// Per block of 2x2-output tiles (a strip of up to kTilesPerBlock tiles, so that its transformed
// inputs and products stay in cache): the input transform V = B^T d B (16 points per tile and
// channel), 16 small matrix products M[xi] = V[xi] . U[xi] with the weights transformed once
// (U = G g G^T), and the output transform Y = A^T M A, plus bias and ReLU. All in one pass, so
// nothing but the input and output crosses memory. Accuracy: the transforms of F(2x2, 3x3) have
// coefficients 0, +-1 and 1/2, and outputs stay within about 1e-6 relative of direct summation.
#pragma once

#include <pthreadpool.h>

#include <cstddef>
#include <vector>

namespace imdn {

class WinogradConv3x3 {
 public:
  // weights: (cout_all, cin_all, 3, 3) PyTorch layout; this convolution takes output channels
  // [o0, o0 + cout) and input channels [i0, i0 + cin) of it. bias: cout_all values or null.
  WinogradConv3x3(const float* weights, const float* bias, size_t cout_all, size_t cin_all, size_t o0, size_t cout,
                  size_t i0, size_t cin, bool relu);

  // Bytes of scratch run() needs with this pool: each thread's transformed inputs and products.
  size_t scratch_bytes(pthreadpool_t pool) const;

  // in: h x w pixels, cin channels every in_stride floats; out: cout channels every out_stride.
  // scratch: scratch_bytes(pool), 64-byte aligned. With out2, output channels from `split` on go
  // there instead (every out2_stride floats): one input transform serves both halves of a
  // distillation step.
  void run(const float* in, size_t in_stride, size_t h, size_t w, float* out, size_t out_stride, pthreadpool_t pool,
           float* scratch, float* out2 = nullptr, size_t out2_stride = 0, size_t split = size_t(-1)) const;

  static constexpr size_t kTilesPerBlock = 32;

 private:
  // Floats of one thread's scratch, rounded up to whole cache lines (no line shared by two).
  size_t per_thread() const { return (16 * kTilesPerBlock * (cin4_ + cout8_) + 15) / 16 * 16; }

  size_t cin_, cout_, cin4_, cout8_;
  bool relu_;
  std::vector<float> u_;     // 16 x (cout8 / 8) x cin4 x 8: transformed weights, packed for the products
  std::vector<float> bias_;  // cout8
};

}  // namespace imdn
