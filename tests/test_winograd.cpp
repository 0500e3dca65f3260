// Winograd F(2x2, 3x3) and F(4x4, 3x3) against direct summation on odd shapes, channel counts and
// strides.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <ostream>
#include <random>
#include <string>

#include "ops.h"
#include "winograd.h"

namespace {

struct Case {
  size_t h, w, cin, cout, in_stride, out_stride;
  bool relu;
};

// "7x13_48to16_in64_out64_relu": test names that say the shape, not a byte dump.
std::string name_of(const Case& c) {
  return std::to_string(c.w) + "x" + std::to_string(c.h) + "_" + std::to_string(c.cin) + "to" + std::to_string(c.cout) +
         "_in" + std::to_string(c.in_stride) + "_out" + std::to_string(c.out_stride) + (c.relu ? "_relu" : "");
}
void PrintTo(const Case& c, std::ostream* os) { *os << name_of(c); }

class Winograd : public ::testing::TestWithParam<Case> {};

TEST_P(Winograd, MatchesDirectConvolution) {
  const Case c = GetParam();
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0.f, 1.f);
  // A wider weight tensor, of which the conv takes a slice, as the engine's split convs do.
  const size_t cout_all = c.cout + 3, cin_all = c.cin + 2, o0 = 2, i0 = 1;
  std::vector<float> wt(cout_all * cin_all * 9), bias(cout_all), in(c.h * c.w * c.in_stride + 8);
  for (float& v : wt) v = n(rng) / std::sqrt(float(9 * c.cin));
  for (float& v : bias) v = n(rng);
  for (float& v : in) v = n(rng);
  for (size_t m : {2, 4})
    for (pthreadpool_t pool : {pthreadpool_t(nullptr), pthreadpool_create(2)}) {
      imdn::WinogradConv3x3 conv(wt.data(), bias.data(), cout_all, cin_all, o0, c.cout, i0, c.cin, c.relu, m);
      ASSERT_EQ(conv.tile(), m);
      std::vector<float> out(c.h * c.w * c.out_stride, 12345.f);
      std::vector<float> scratch(conv.scratch_bytes(pool) / sizeof(float));
      conv.run(in.data(), c.in_stride, c.h, c.w, out.data(), c.out_stride, pool, scratch.data());
      if (pool) pthreadpool_destroy(pool);
      double worst = 0;
      for (size_t y = 0; y < c.h; ++y)
        for (size_t x = 0; x < c.w; ++x)
          for (size_t o = 0; o < c.out_stride; ++o) {
            const float got = out[(y * c.w + x) * c.out_stride + o];
            if (o >= c.cout) {
              ASSERT_EQ(got, 12345.f) << "wrote outside its channels";
              continue;
            }
            double s = bias[o0 + o];
            for (size_t i = 0; i < c.cin; ++i)
              for (int ky = 0; ky < 3; ++ky)
                for (int kx = 0; kx < 3; ++kx) {
                  const long yy = long(y) + ky - 1, xx = long(x) + kx - 1;
                  if (yy < 0 || xx < 0 || yy >= long(c.h) || xx >= long(c.w)) continue;
                  s += double(wt[((o0 + o) * cin_all + i0 + i) * 9 + ky * 3 + kx]) *
                       in[(yy * c.w + xx) * c.in_stride + i];
                }
            if (c.relu && s < 0) s = 0;
            worst = std::max(worst, std::fabs(s - got));
          }
      // F(4x4)'s transforms have coefficients up to 8 (and 1/24 in the weights): about twice the error.
      EXPECT_LE(worst, m == 2 ? 2e-5 : 5e-5)
          << "F(" << m << "x" << m << ") " << c.h << "x" << c.w << " " << c.cin << "->" << c.cout;
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Winograd,
                         ::testing::Values(Case{1, 1, 3, 64, 3, 64, false}, Case{7, 13, 48, 16, 64, 64, false},
                                           Case{13, 7, 64, 48, 64, 48, true}, Case{5, 70, 15, 20, 20, 20, true},
                                           Case{2, 2, 5, 5, 5, 30, false}, Case{9, 9, 12, 12, 12, 12, false},
                                           Case{33, 65, 64, 64, 64, 64, false}),
                         [](const ::testing::TestParamInfo<Case>& i) { return name_of(i.param); });

}  // namespace

namespace {

// Normal random weights (scaled by 1/10), biases and inputs for a cout x cin 3x3 convolution
// over h x w pixels, from a seed.
struct Random3x3 {
  std::vector<float> wt, bias, in;
  Random3x3(size_t h, size_t w, size_t cin, size_t cout, unsigned seed)
      : wt(cout * cin * 9), bias(cout), in(h * w * cin + 4) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> n(0.f, 1.f);
    for (float& v : wt) v = n(rng) / 10;
    for (float& v : bias) v = n(rng);
    for (float& v : in) v = n(rng);
  }
};

// Split outputs (a distillation step's two halves from one input transform) equal the unsplit
// convolution, including a split inside a group of four channels.
TEST(Winograd, SplitOutputsMatchTheWholeOutput) {
  const size_t h = 9, w = 11, cin = 15, cout = 20;
  const Random3x3 r(h, w, cin, cout, 5);
  const std::vector<float>&wt = r.wt, &bias = r.bias, &in = r.in;
  for (size_t m : {2, 4}) {
    imdn::WinogradConv3x3 conv(wt.data(), bias.data(), cout, cin, 0, cout, 0, cin, false, m);
    std::vector<float> whole(h * w * cout), scratch(conv.scratch_bytes(nullptr) / sizeof(float));
    conv.run(in.data(), cin, h, w, whole.data(), cout, nullptr, scratch.data());
    for (size_t split : {size_t(4), size_t(5), size_t(8), size_t(15)}) {
      const size_t stride_a = 30, stride_b = cout - split;
      std::vector<float> a(h * w * stride_a, -1.f), b(h * w * stride_b, -1.f);
      conv.run(in.data(), cin, h, w, a.data(), stride_a, nullptr, scratch.data(), b.data(), stride_b, split);
      for (size_t p = 0; p < h * w; ++p)
        for (size_t c = 0; c < cout; ++c) {
          const float got = c < split ? a[p * stride_a + c] : b[p * stride_b + c - split];
          ASSERT_EQ(got, whole[p * cout + c]) << "F(" << m << "x" << m << ") split " << split << " channel " << c;
        }
    }
  }
}

}  // namespace

namespace {

// LeakyReLU in the output transform gives the bits ops::leaky_relu gives after the plain
// convolution (the network skips that pass when the convolution applies it).
TEST(Winograd, LeakyReluInTheTransformEqualsTheSeparatePass) {
  const size_t h = 10, w = 13, cin = 12, cout = 10;
  const Random3x3 r(h, w, cin, cout, 7);
  const std::vector<float>&wt = r.wt, &bias = r.bias, &in = r.in;
  for (size_t m : {2, 4}) {
    imdn::WinogradConv3x3 plain(wt.data(), bias.data(), cout, cin, 0, cout, 0, cin, false, m);
    imdn::WinogradConv3x3 leaky(wt.data(), bias.data(), cout, cin, 0, cout, 0, cin, false, m);
    leaky.set_leaky(imdn::ops::kLeakySlope);
    std::vector<float> a(h * w * cout), b(h * w * cout), scratch(plain.scratch_bytes(nullptr) / sizeof(float));
    plain.run(in.data(), cin, h, w, a.data(), cout, nullptr, scratch.data());
    imdn::ops::leaky_relu(a.data(), h * w, cout, cout, nullptr);
    leaky.run(in.data(), cin, h, w, b.data(), cout, nullptr, scratch.data());
    size_t negative = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i], b[i]) << "F(" << m << "x" << m << ") value " << i;
      negative += a[i] < 0;
    }
    EXPECT_GT(negative, a.size() / 4);  // the slope was exercised
  }
}

}  // namespace

namespace {

// The 1x1 convolution against direct summation: a slice of a wider weight tensor, strided pixels,
// pixel counts that are not multiples of 4, output counts that are not multiples of 8, added into
// what the output held or written over it, on one thread and on two.
TEST(Pointwise, MatchesDirectSummation) {
  std::mt19937 rng(11);
  std::normal_distribution<float> n(0.f, 1.f);
  for (const auto& [pixels, cin, cout] : std::vector<std::array<size_t, 3>>{{1, 3, 5}, {7, 64, 64}, {130, 17, 20}}) {
    const size_t cout_all = cout + 3, cin_all = cin + 2, o0 = 1, i0 = 2, in_stride = cin + 1, out_stride = cout + 2;
    std::vector<float> wt(cout_all * cin_all), bias(cout_all), in(pixels * in_stride), before(pixels * out_stride);
    for (float& v : wt) v = n(rng) / 8;
    for (float& v : bias) v = n(rng);
    for (float& v : in) v = n(rng);
    for (float& v : before) v = n(rng);
    const imdn::PointwiseConv conv(wt.data(), bias.data(), cin_all, o0, cout, i0, cin);
    for (bool accumulate : {false, true})
      for (pthreadpool_t pool : {pthreadpool_t(nullptr), pthreadpool_create(2)}) {
        std::vector<float> out = before;
        conv.run(in.data(), in_stride, pixels, out.data(), out_stride, accumulate, pool);
        if (pool) pthreadpool_destroy(pool);
        for (size_t p = 0; p < pixels; ++p)
          for (size_t o = 0; o < out_stride; ++o) {
            const float got = out[p * out_stride + o];
            if (o >= cout) {
              ASSERT_EQ(got, before[p * out_stride + o]) << "wrote outside its channels";
              continue;
            }
            double s = bias[o0 + o] + (accumulate ? before[p * out_stride + o] : 0.0);
            for (size_t i = 0; i < cin; ++i) s += double(wt[(o0 + o) * cin_all + i0 + i]) * in[p * in_stride + i];
            ASSERT_NEAR(got, s, 1e-5) << pixels << " px " << cin << "->" << cout << " pixel " << p << " out " << o;
          }
      }
  }
}

}  // namespace
