#include "resize.h"

#include <cmath>

namespace imdn {

namespace {

double cubic(double x) {
  const double a = std::fabs(x), a2 = a * a, a3 = a2 * a;
  if (a <= 1) return 1.5 * a3 - 2.5 * a2 + 1;
  if (a <= 2) return -0.5 * a3 + 2.5 * a2 - 4 * a + 2;
  return 0;
}

// For each output index along one axis: the input indices and normalized weights that make it.
struct Taps {
  size_t count = 0;            // taps per output
  std::vector<size_t> index;   // out_len * count
  std::vector<double> weight;  // out_len * count
};

Taps contributions(size_t in_len, size_t out_len) {
  const double scale = double(out_len) / double(in_len);
  const bool shrink = scale < 1;
  const double width = shrink ? 4.0 / scale : 4.0;
  Taps t;
  t.count = size_t(std::ceil(width)) + 2;
  t.index.resize(out_len * t.count);
  t.weight.resize(out_len * t.count);
  for (size_t o = 0; o < out_len; ++o) {
    const double x = double(o + 1);  // MATLAB is 1-based
    const double u = x / scale + 0.5 * (1 - 1 / scale);
    const double left = std::floor(u - width / 2);
    double sum = 0;
    for (size_t k = 0; k < t.count; ++k) {
      const double idx = left + double(k);
      const double wgt = shrink ? scale * cubic(scale * (u - idx)) : cubic(u - idx);
      // symmetric padding: ..., 2, 1, 1, 2, ..., n, n, n-1, ...
      long long i = (long long)idx - 1;  // 0-based
      const long long n = (long long)in_len, period = 2 * n;
      i %= period;
      if (i < 0) i += period;
      if (i >= n) i = period - 1 - i;
      t.index[o * t.count + k] = size_t(i);
      t.weight[o * t.count + k] = wgt;
      sum += wgt;
    }
    for (size_t k = 0; k < t.count; ++k) t.weight[o * t.count + k] /= sum;
  }
  return t;
}

}  // namespace

std::vector<float> resize_bicubic(const float* in, size_t h, size_t w, size_t channels, size_t oh, size_t ow) {
  // Height first, then width, in double between the passes (MATLAB's order for equal scales).
  const Taps ty = contributions(h, oh), tx = contributions(w, ow);
  std::vector<double> mid(oh * w * channels, 0.0);
  for (size_t y = 0; y < oh; ++y)
    for (size_t k = 0; k < ty.count; ++k) {
      const double wgt = ty.weight[y * ty.count + k];
      if (wgt == 0) continue;
      const float* src = in + ty.index[y * ty.count + k] * w * channels;
      double* dst = mid.data() + y * w * channels;
      for (size_t i = 0; i < w * channels; ++i) dst[i] += wgt * src[i];
    }
  std::vector<float> out(oh * ow * channels);
  for (size_t y = 0; y < oh; ++y)
    for (size_t x = 0; x < ow; ++x)
      for (size_t c = 0; c < channels; ++c) {
        double v = 0;
        for (size_t k = 0; k < tx.count; ++k) {
          v += tx.weight[x * tx.count + k] * mid[(y * w + tx.index[x * tx.count + k]) * channels + c];
        }
        out[(y * ow + x) * channels + c] = float(v);
      }
  return out;
}

}  // namespace imdn
