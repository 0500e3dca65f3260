// Exact tiling (plan.h): block-at-a-time tiles give the same bytes as one whole-image tile.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "image.h"
#include "job.h"
#include "network.h"
#include "support.h"

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
  imdn::run_network(net, in.data(), c.h, c.w, whole.data());
  size_t last = 0, total = 0;
  imdn::run_network(net, in.data(), c.h, c.w, tiled.data(), c.tile, [&](size_t d, size_t n) {
    last = d;
    total = n;
  });
  EXPECT_EQ(last, total);
  for (float v : tiled) ASSERT_TRUE(std::isfinite(v)) << "a pixel was never written";
  EXPECT_EQ(max_diff(tiled, whole), 0.0) << "tiles must give the whole image's bytes";
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
  std::vector<float> in = random_image(16, 16, 1), out(16 * 16 * 16 * 3);
  EXPECT_THROW(imdn::run_network(net, in.data(), 16, 16, out.data(), 4), imdn::Error);
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
  imdn::Network net(imdn::load_model_file(models_dir() + "/" + c.model + ".imdn"), 0);
  for (const char* name : {"baby", "bird", "butterfly", "head", "woman"}) {
    const imdn::Image img = imdn::load_image(imdn_dir() + "/datasets/Set5_LR/" + c.lr + "/" + name + c.lr + ".bmp");
    const auto [oh, ow] = net.output_size(img.height, img.width);
    std::vector<float> whole(oh * ow * 3), tiled(oh * ow * 3);
    imdn::run_network(net, img.data.data(), img.height, img.width, whole.data());
    for (size_t tile : {size_t(16), size_t(32), size_t(64), size_t(128), size_t(1024)}) {
      imdn::run_network(net, img.data.data(), img.height, img.width, tiled.data(), tile);
      const double raw = max_diff(tiled, whole);
      const int levels = max_level_diff(tiled, whole);
      std::printf("[ tiled    ] %s %s tile %zu: max raw diff %.2g, max level diff %d\n", c.model, name, tile, raw,
                  levels);
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

// The same bytes whatever the tiling, the threads and the instance: units gathered here, run by
// a second network built from the same model (another "instance"), scattered back.
TEST(Tiled, SameBytesForAnyTileThreadsAndInstance) {
  for (imdn::Arch arch : {imdn::Arch::kIMDN, imdn::Arch::kIMDN_RTC, imdn::Arch::kIMDN_RTE, imdn::Arch::kIMDN_AS}) {
    const imdn::Model m = random_model(small_info(arch), 3);
    imdn::Network one(m, 1), two(m, 2);
    const size_t h = 72, w = 52;
    const std::vector<float> in = random_image(h, w, 8);
    const auto [oh, ow] = one.output_size(h, w);
    std::vector<float> whole(oh * ow * 3), other(oh * ow * 3);
    imdn::run_network(one, in.data(), h, w, whole.data());
    for (size_t tile : {size_t(8), size_t(11), size_t(16), size_t(33), size_t(64)}) {
      imdn::run_network(two, in.data(), h, w, other.data(), tile);
      ASSERT_EQ(0, std::memcmp(whole.data(), other.data(), whole.size() * sizeof(float)))
          << imdn::arch_name(arch) << " tile " << tile;
    }
    imdn::Image img;
    img.width = w;
    img.height = h;
    img.channels = 3;
    img.data = in;
    imdn::JobOptions o;
    o.raw = true;
    o.tile = 16;
    o.min_tiles = 4;
    imdn::Job job(one, img, o);
    for (const imdn::Job::Phase& ph : job.phases()) {
      for (size_t i = ph.begin + ph.count; i-- > ph.begin;) {  // in reverse: order must not matter
        const std::vector<uint8_t> msg = job.gather(i).encode();
        const std::vector<uint8_t> back = imdn::run_unit(two, imdn::UnitData::decode(msg.data(), msg.size())).encode();
        job.scatter(i, imdn::UnitData::decode(back.data(), back.size()));
      }
    }
    const imdn::Image out = job.take_image();
    ASSERT_EQ(0, std::memcmp(whole.data(), out.data.data(), whole.size() * sizeof(float))) << imdn::arch_name(arch);
  }
}

TEST(Tiled, RefusesMalformedUnits) {
  const imdn::Model m = random_model(small_info(imdn::Arch::kIMDN), 3);
  imdn::Network net(m, 1);
  const uint8_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_THROW(imdn::UnitData::decode(junk, sizeof(junk)), imdn::Error);
  imdn::UnitData d;
  d.head.kind = uint32_t(imdn::UnitKind::kBlockA);
  d.head.h = d.head.w = d.head.ch = d.head.cw = 8;
  d.a[0].resize(10);
  EXPECT_THROW(imdn::run_unit(net, d), imdn::Error);
  std::vector<uint8_t> msg = d.encode();
  msg.pop_back();
  EXPECT_THROW(imdn::UnitData::decode(msg.data(), msg.size()), imdn::Error);
}

// Tiles cover the body once, evenly, on multiples of 4; more are made for more workers.
TEST(Tiled, PlanTilesCoverOnceOnMultiplesOfFour) {
  for (const auto& [h, w, tile, min_tiles] : std::vector<std::array<size_t, 4>>{{100, 260, 256, 1},
                                                                                {37, 1000, 128, 1},
                                                                                {17, 17, 16, 1},
                                                                                {1, 1, 16, 1},
                                                                                {300, 513, 64, 4},
                                                                                {40, 40, 128, 4}}) {
    const std::vector<imdn::Rect> tiles = imdn::plan_tiles(h, w, tile, min_tiles);
    std::vector<int> seen(h * w, 0);
    for (const imdn::Rect& t : tiles) {
      EXPECT_EQ(t.x % 4, 0u);
      EXPECT_EQ(t.y % 4, 0u);
      EXPECT_LE(std::max(t.h, t.w), tile + 3);
      for (size_t y = t.y; y < t.y + t.h; ++y)
        for (size_t x = t.x; x < t.x + t.w; ++x) ++seen[y * w + x];
    }
    for (int s : seen) ASSERT_EQ(s, 1) << w << "x" << h << " tile " << tile;
    if (min_tiles > 1 && std::max(h, w) >= 64) EXPECT_GE(tiles.size(), min_tiles) << w << "x" << h;
  }
  // 260 px in tiles of up to 256: two of about 130 (132 + 128, on multiples of 4), not 256 + 4.
  const std::vector<imdn::Rect> two = imdn::plan_tiles(10, 260, 256);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].w, 132u);
  EXPECT_EQ(two[1].w, 128u);
}
