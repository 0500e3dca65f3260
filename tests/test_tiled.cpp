// Exact tiling: TiledNetwork's block-at-a-time output equals whole-image inference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <mutex>

#include "image.h"
#include "network.h"
#include "support.h"
#include "tiled.h"

using namespace testing_support;

namespace {

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

int max_level_diff(const std::vector<float>& a, const std::vector<float>& b) {
  int m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(int(imdn::to_u8(a[i])) - int(imdn::to_u8(b[i]))));
  return m;
}

struct TileCase {
  imdn::Arch arch;
  size_t h, w, tile;
};

void PrintTo(const TileCase& c, std::ostream* os) {
  *os << imdn::arch_name(c.arch) << " " << c.w << "x" << c.h << " tile " << c.tile;
}

class TiledVsWhole : public ::testing::TestWithParam<TileCase> {};

TEST_P(TiledVsWhole, RandomWeights) {
  const TileCase c = GetParam();
  const imdn::Model m = random_model(small_info(c.arch), 21);
  imdn::Network net(m, 1);
  const std::vector<float> in = random_image(c.h, c.w, 8);
  const auto [oh, ow] = net.output_size(c.h, c.w);
  std::vector<float> whole(oh * ow * 3), tiled(oh * ow * 3, NAN);
  net.run(in.data(), c.h, c.w, whole.data());
  imdn::TiledNetwork t(net, c.tile);
  size_t last = 0, total = 0;
  t.run(in.data(), c.h, c.w, tiled.data(), [&](size_t d, size_t n) {
    last = d;
    total = n;
  });
  EXPECT_EQ(last, total);
  for (float v : tiled) ASSERT_TRUE(std::isfinite(v)) << "a pixel was never written";
  EXPECT_LE(max_diff(tiled, whole), 2e-5);
}

INSTANTIATE_TEST_SUITE_P(
    OddShapes, TiledVsWhole,
    ::testing::Values(TileCase{imdn::Arch::kIMDN, 37, 29, 8}, TileCase{imdn::Arch::kIMDN, 9, 40, 16},
                      TileCase{imdn::Arch::kIMDN, 5, 3, 8}, TileCase{imdn::Arch::kIMDN_RTC, 33, 17, 8},
                      TileCase{imdn::Arch::kIMDN_RTE, 35, 23, 8}, TileCase{imdn::Arch::kIMDN_RTE, 1, 1, 8},
                      TileCase{imdn::Arch::kIMDN_AS, 64, 44, 8}, TileCase{imdn::Arch::kIMDN_AS, 4, 4, 8}),
    [](const ::testing::TestParamInfo<TileCase>& i) {
      return std::string(imdn::arch_name(i.param.arch)) + "_" + std::to_string(i.param.w) + "x" +
             std::to_string(i.param.h) + "_tile" + std::to_string(i.param.tile);
    });

TEST(Tiled, RefusesTinyTiles) { 
  const imdn::Model m = random_model(small_info(imdn::Arch::kIMDN), 1);
  imdn::Network net(m, 1);
  EXPECT_THROW(imdn::TiledNetwork(net, 4), imdn::Error);
}

struct Official {
  const char* model;
  const char* lr;
  int scale;
};

void PrintTo(const Official& c, std::ostream* os) { *os << c.model; }

class TiledSet5 : public ::testing::TestWithParam<Official> {};

// The official models over Set5 at tile sizes 16, 32, 64, 128 and one larger than the image:
// at most one level of 255 from whole-image inference; the raw difference is printed.
TEST_P(TiledSet5, WithinOneLevelOfWholeImage) {
  const Official c = GetParam();
  REQUIRE_FILE(imdn_dir() + "/datasets/Set5_HR/baby.bmp");
  imdn::Network net(imdn::Model::load(models_dir() + "/" + c.model + ".imdn"), 0);
  for (const char* name : {"baby", "bird", "butterfly", "head", "woman"}) {
    const imdn::Image img = imdn::load_image(imdn_dir() + "/datasets/Set5_LR/" + c.lr + "/" + name + c.lr + ".bmp");
    const auto [oh, ow] = net.output_size(img.height, img.width);
    std::vector<float> whole(oh * ow * 3), tiled(oh * ow * 3);
    net.run(img.data.data(), img.height, img.width, whole.data());
    for (size_t tile : {size_t(16), size_t(32), size_t(64), size_t(128), size_t(1024)}) {
      imdn::TiledNetwork t(net, tile);
      t.run(img.data.data(), img.height, img.width, tiled.data());
      const double raw = max_diff(tiled, whole);
      const int levels = max_level_diff(tiled, whole);
      std::printf("[ tiled    ] %s %s tile %zu: max raw diff %.2g, max level diff %d\n", c.model, name, tile, raw, levels);
      EXPECT_LE(levels, 1) << name << " tile " << tile;
      EXPECT_LE(raw, 1e-4) << name << " tile " << tile;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Official, TiledSet5,
                         ::testing::Values(Official{"IMDN_x2", "x2", 2}, Official{"IMDN_x3", "x3", 3},
                                           Official{"IMDN_x4", "x4", 4}, Official{"IMDN_RTC", "x2", 2},
                                           Official{"IMDN_RTE", "x2", 2}),
                         [](const ::testing::TestParamInfo<Official>& i) { return std::string(i.param.model); });

}  // namespace

TEST(Tiled, RowSinkGetsEveryOutputRowOnceWithTheSameValues) {
  const imdn::Model m = random_model(small_info(imdn::Arch::kIMDN), 3);
  imdn::Network net(m, 2);
  imdn::TiledNetwork tiled(net, 16);
  const size_t h = 40, w = 36, r = m.info().scale;
  const std::vector<float> in = random_image(h, w, 8);
  std::vector<float> whole(h * r * w * r * 3), sunk(whole.size(), -1.f);
  tiled.run(in.data(), h, w, whole.data());
  std::vector<int> seen(h * r * w * r, 0);
  std::mutex mu;
  tiled.run(in.data(), h, w, nullptr, nullptr, [&](size_t y, size_t x0, size_t n, const float* rgb) {
    std::lock_guard<std::mutex> lock(mu);
    for (size_t i = 0; i < n; ++i) {
      ++seen[y * w * r + x0 + i];
      for (size_t c = 0; c < 3; ++c) sunk[(y * w * r + x0 + i) * 3 + c] = rgb[i * 3 + c];
    }
  });
  for (int s : seen) ASSERT_EQ(s, 1);
  for (size_t i = 0; i < whole.size(); ++i) ASSERT_EQ(sunk[i], whole[i]);
}
