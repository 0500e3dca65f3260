// The few element-wise and reduction passes IMDN needs around XNNPACK's convolutions. Each runs
// over NHWC float maps, split into row chunks across the thread pool (pool may be null).
#pragma once

#include <pthreadpool.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace imdn {
namespace ops {

constexpr float kLeakySlope = 0.05f;

// x = x >= 0 ? x : 0.05 x, for `channels` of every `stride` floats, over `pixels` pixels.
void leaky_relu(float* x, size_t pixels, size_t channels, size_t stride, pthreadpool_t pool);

// y += x, n floats.
void add(float* y, const float* x, size_t n, pthreadpool_t pool);

// y = x * s, n floats.
void scale_copy(const float* x, float* y, size_t n, float s, pthreadpool_t pool);

// x[p, c] *= s[c]
void scale_channels(float* x, size_t pixels, size_t channels, const float* s, pthreadpool_t pool);

// Per-channel sum and sum of squares over `count` pixels, in double: what the attention's
// statistics are made of (attention_sums.h takes them, by cells, in a fixed order).
struct ChannelSums {
  std::vector<double> sum, sumsq;
  size_t count = 0;
};

// Runs f(begin, end) over [0, n) in chunks of `grain` items, split across the pool.
void parallel_rows(pthreadpool_t pool, size_t n, size_t grain, const std::function<void(size_t, size_t)>& f);

// Mean and population standard deviation per channel.
void stats_from_sums(const ChannelSums& s, std::vector<double>* mean, std::vector<double>* stdev);

// CCA's channel weights: sigmoid(W1 relu(W0 (stdev + mean) + b0) + b1).
std::vector<float> cca_weights(const std::vector<double>& mean, const std::vector<double>& stdev,
                               const std::vector<float>& w0, const std::vector<float>& b0, const std::vector<float>& w1,
                               const std::vector<float>& b1);

// PyTorch PixelShuffle(r) from an NHWC map of 3*r*r channels (channel c*r*r + dy*r + dx) to an NHWC
// RGB image, keeping the top-left oh x ow (<= h*r x w*r) and multiplying by `scale`.
void pixel_shuffle(const float* in, size_t h, size_t w, size_t r, float* out, size_t oh, size_t ow, float scale,
                   pthreadpool_t pool);

}  // namespace ops
}  // namespace imdn
