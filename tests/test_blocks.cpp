// The XNNPACK engine against the literal reference (naive.cpp), on random weights and odd shapes,
// for every architecture and so every block kind: IMDB with CCA, the speed block, the large block,
// the stride-2 stems, pixel shuffle by 2, 3 and 4.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "attention_sums.h"
#include "job.h"
#include "naive.h"
#include "network.h"
#include "ops.h"
#include "support.h"

using namespace testing_support;

namespace {

struct Case {
  imdn::Arch arch;
  int h, w;
};

void expect_close(const std::vector<float>& got, const std::vector<float>& want, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    max_diff = std::max(max_diff, std::fabs(double(got[i]) - want[i]));
    max_abs = std::max(max_abs, std::fabs(double(want[i])));
  }
  EXPECT_LE(max_diff, tol * std::max(1.0, max_abs)) << what << " (max |ref| " << max_abs << ")";
}

void PrintTo(const Case& c, std::ostream* os) {
  *os << std::string(imdn::arch_name(c.arch)) + " " + std::to_string(c.w) + "x" + std::to_string(c.h);
}

class NetworkVsNaive : public ::testing::TestWithParam<Case> {};

TEST_P(NetworkVsNaive, Matches) {
  const Case c = GetParam();
  const imdn::Model m = random_model(small_info(c.arch), 11);
  const std::vector<float> in = random_image(size_t(c.h), size_t(c.w), 3);
  for (size_t threads : {size_t(1), size_t(2)}) {
    imdn::Network net(m, threads);
    const auto [oh, ow] = net.output_size(size_t(c.h), size_t(c.w));
    std::vector<float> out(oh * ow * 3);
    imdn::run_network(net, in.data(), size_t(c.h), size_t(c.w), out.data());
    const naive::Map ref = naive::forward(m, naive::from_hwc(in.data(), c.h, c.w));
    ASSERT_EQ(size_t(ref.h), oh);
    ASSERT_EQ(size_t(ref.w), ow);
    expect_close(out, naive::to_hwc(ref), 2e-5,
                 std::string(imdn::arch_name(c.arch)) + " " + std::to_string(c.w) + "x" + std::to_string(c.h) +
                     " threads " + std::to_string(threads));
  }
}

INSTANTIATE_TEST_SUITE_P(OddShapes, NetworkVsNaive,
                         ::testing::Values(Case{imdn::Arch::kIMDN, 1, 1}, Case{imdn::Arch::kIMDN, 7, 13},
                                           Case{imdn::Arch::kIMDN, 13, 7}, Case{imdn::Arch::kIMDN, 2, 31},
                                           Case{imdn::Arch::kIMDN_RTC, 1, 1}, Case{imdn::Arch::kIMDN_RTC, 7, 13},
                                           Case{imdn::Arch::kIMDN_RTC, 17, 5}, Case{imdn::Arch::kIMDN_RTE, 1, 1},
                                           Case{imdn::Arch::kIMDN_RTE, 7, 13}, Case{imdn::Arch::kIMDN_RTE, 8, 6},
                                           Case{imdn::Arch::kIMDN_AS, 4, 4}, Case{imdn::Arch::kIMDN_AS, 8, 20},
                                           Case{imdn::Arch::kIMDN_AS, 12, 4}),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return std::string(imdn::arch_name(i.param.arch)) + "_" + std::to_string(i.param.w) + "x" +
                                  std::to_string(i.param.h);
                         });

TEST(Network, ReshapesBetweenSizesAndBack) {
  const imdn::Model m = random_model(small_info(imdn::Arch::kIMDN), 2);
  imdn::Network net(m, 1);
  auto run = [&](int h, int w) {
    const std::vector<float> in = random_image(size_t(h), size_t(w), unsigned(h * 100 + w));
    std::vector<float> out(size_t(h) * w * 27);
    imdn::run_network(net, in.data(), size_t(h), size_t(w), out.data());
    return std::make_pair(out, naive::to_hwc(naive::forward(m, naive::from_hwc(in.data(), h, w))));
  };
  for (auto [h, w] : {std::pair<int, int>{5, 9}, {9, 5}, {3, 3}, {5, 9}}) {
    auto [got, want] = run(h, w);
    expect_close(got, want, 2e-5, std::to_string(w) + "x" + std::to_string(h));
  }
}

TEST(Network, RefusesSizesItCannotMake) {
  const imdn::Model as = random_model(small_info(imdn::Arch::kIMDN_AS), 2);
  imdn::Network net(as, 1);
  std::vector<float> buf(64 * 3 * 16);
  try {
    imdn::run_network(net, buf.data(), 6, 8, buf.data());
    FAIL() << "IMDN_AS accepted 8x6";
  } catch (const imdn::Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiples of 4"), std::string::npos) << e.what();
  }
  EXPECT_THROW(imdn::run_network(net, buf.data(), 0, 8, buf.data()), imdn::Error);
}

TEST(Ops, PixelShuffleMatchesPyTorchOrder) {
  // 3*r*r channels at 2x3; channel c*r*r + dy*r + dx lands at (y*r+dy, x*r+dx) of colour c.
  const size_t r = 3, h = 2, w = 3;
  std::vector<float> in(h * w * 27);
  for (size_t i = 0; i < in.size(); ++i) in[i] = float(i);
  naive::Map nchw(27, int(h), int(w));
  for (size_t y = 0; y < h; ++y)
    for (size_t x = 0; x < w; ++x)
      for (size_t c = 0; c < 27; ++c) nchw.at(int(c), int(y), int(x)) = in[(y * w + x) * 27 + c];
  const std::vector<float> want = naive::to_hwc(naive::pixel_shuffle(nchw, int(r)));
  std::vector<float> got(h * r * w * r * 3);
  imdn::ops::pixel_shuffle(in.data(), h, w, r, got.data(), h * r, w * r, 1.f, nullptr);
  EXPECT_EQ(got, want);
  // Cropping keeps the top-left corner.
  std::vector<float> crop(5 * 7 * 3);
  imdn::ops::pixel_shuffle(in.data(), h, w, r, crop.data(), 5, 7, 1.f, nullptr);
  for (size_t y = 0; y < 5; ++y)
    for (size_t x = 0; x < 7; ++x)
      for (size_t c = 0; c < 3; ++c) EXPECT_EQ(crop[(y * 7 + x) * 3 + c], want[(y * 9 + x) * 3 + c]);
}

TEST(Ops, ChannelStatsArePopulationStatistics) {
  // Channel 0: 1..6 (mean 3.5, population std sqrt(35/12)); channel 1: constant 2.
  std::vector<float> x;
  for (int i = 1; i <= 6; ++i) {
    x.push_back(float(i));
    x.push_back(2.f);
  }
  std::vector<double> mean, stdev;
  imdn::channel_stats(x.data(), 6, 2, nullptr, &mean, &stdev);
  EXPECT_DOUBLE_EQ(mean[0], 3.5);
  EXPECT_NEAR(stdev[0], std::sqrt(35.0 / 12.0), 1e-12);
  EXPECT_DOUBLE_EQ(mean[1], 2.0);
  EXPECT_DOUBLE_EQ(stdev[1], 0.0);
}

TEST(Ops, LeakyReluTouchesOnlyItsChannels) {
  std::vector<float> x = {-1, -2, -3, 4, -5, -6, 7, -8};  // 2 pixels, stride 4, 2 channels
  imdn::ops::leaky_relu(x.data(), 2, 2, 4, nullptr);
  const std::vector<float> want = {-0.05f, -0.1f, -3, 4, -0.25f, -0.3f, 7, -8};
  EXPECT_EQ(x, want);
}

}  // namespace
