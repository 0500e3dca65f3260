#include "ops.h"

#include <algorithm>
#include <cmath>

namespace imdn {
namespace ops {

namespace {

// Runs f(begin, end) over [0, n) in chunks of about `grain` items, in parallel when pool is set.
template <typename F>
void parallel_for(pthreadpool_t pool, size_t n, size_t grain, const F& f) {
  if (n == 0) return;
  const size_t chunks = (n + grain - 1) / grain;
  if (pool == nullptr || chunks == 1) {
    f(size_t(0), n);
    return;
  }
  auto task = [&](size_t i) { f(i * grain, std::min(n, (i + 1) * grain)); };
  pthreadpool_parallelize_1d(pool, task, chunks);
}

constexpr size_t kGrain = 1 << 14;  // floats per chunk for flat passes

}  // namespace

// max(v, 0.05 v) is exactly v for v >= 0 and 0.05 v below. Written so that both operands are
// computed unconditionally: compilers then emit a vector max instead of a branch per value (a
// conditional multiply is not speculated under the default -ftrapping-math: docs/kernels.md).
inline void leaky_relu_run(float* __restrict x, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float v = x[i], s = v * kLeakySlope;
    x[i] = v < s ? s : v;
  }
}

void leaky_relu(float* x, size_t pixels, size_t channels, size_t stride, pthreadpool_t pool) {
  if (channels == stride) {
    parallel_for(pool, pixels * channels, kGrain, [x](size_t b, size_t e) { leaky_relu_run(x + b, e - b); });
    return;
  }
  parallel_for(pool, pixels, std::max<size_t>(1, kGrain / stride), [=](size_t b, size_t e) {
    for (size_t p = b; p < e; ++p) leaky_relu_run(x + p * stride, channels);
  });
}

void add(float* y, const float* x, size_t n, pthreadpool_t pool) {
  parallel_for(pool, n, kGrain, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) y[i] += x[i];
  });
}

void scale_copy(const float* x, float* y, size_t n, float s, pthreadpool_t pool) {
  parallel_for(pool, n, kGrain, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) y[i] = x[i] * s;
  });
}

void scale_channels(float* x, size_t pixels, size_t channels, const float* s, pthreadpool_t pool) {
  parallel_for(pool, pixels, std::max<size_t>(1, kGrain / channels), [&](size_t b, size_t e) {
    for (size_t p = b; p < e; ++p) {
      float* row = x + p * channels;
      for (size_t c = 0; c < channels; ++c) row[c] *= s[c];
    }
  });
}

void parallel_rows(pthreadpool_t pool, size_t n, size_t grain, const std::function<void(size_t, size_t)>& f) {
  parallel_for(pool, n, grain, f);
}

void stats_from_sums(const ChannelSums& s, std::vector<double>* mean, std::vector<double>* stdev) {
  const size_t channels = s.sum.size();
  mean->resize(channels);
  stdev->resize(channels);
  const double n = double(s.count);
  for (size_t c = 0; c < channels; ++c) {
    const double m = s.sum[c] / n;
    (*mean)[c] = m;
    (*stdev)[c] = std::sqrt(std::max(0.0, s.sumsq[c] / n - m * m));
  }
}

std::vector<float> cca_weights(const std::vector<double>& mean, const std::vector<double>& stdev,
                               const std::vector<float>& w0, const std::vector<float>& b0, const std::vector<float>& w1,
                               const std::vector<float>& b1) {
  const size_t channels = mean.size(), hidden = b0.size();
  std::vector<double> hid(hidden);
  for (size_t j = 0; j < hidden; ++j) {
    double a = b0[j];
    for (size_t c = 0; c < channels; ++c) a += double(w0[j * channels + c]) * double(float(stdev[c]) + float(mean[c]));
    hid[j] = std::max(0.0, a);
  }
  std::vector<float> z(channels);
  for (size_t c = 0; c < channels; ++c) {
    double a = b1[c];
    for (size_t j = 0; j < hidden; ++j) a += double(w1[c * hidden + j]) * hid[j];
    z[c] = float(1.0 / (1.0 + std::exp(-a)));
  }
  return z;
}

void pixel_shuffle(const float* in, size_t h, size_t w, size_t r, float* out, size_t oh, size_t ow, float scale,
                   pthreadpool_t pool) {
  const size_t cin = 3 * r * r;
  (void)h;
  parallel_for(pool, oh, std::max<size_t>(1, kGrain / (ow * 3 + 1)), [&](size_t b, size_t e) {
    for (size_t oy = b; oy < e; ++oy) {
      const size_t y = oy / r, dy = oy % r;
      for (size_t ox = 0; ox < ow; ++ox) {
        const size_t x = ox / r, dx = ox % r;
        const float* src = in + (y * w + x) * cin + dy * r + dx;
        float* dst = out + (oy * ow + ox) * 3;
        dst[0] = src[0] * scale;
        dst[1] = src[r * r] * scale;
        dst[2] = src[2 * r * r] * scale;
      }
    }
  });
}

}  // namespace ops
}  // namespace imdn
