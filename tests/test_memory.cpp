// Memory (plan.h): float16 maps, the memory limit and the plan that fits it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>

#include "half.h"
#include "image.h"
#include "job.h"
#include "network.h"
#include "support.h"

using namespace testing_support;

namespace {

float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// The nearest half to v by search over all finite halves (ties to the even code), the IEEE rule.
uint16_t nearest_half(float v) {
  if (std::isnan(v)) return 0x7e00;
  const uint16_t sign = std::signbit(v) ? 0x8000 : 0;
  const double a = std::fabs(double(v));
  if (a >= 65520.0) return sign | 0x7c00;  // halfway past the largest half (65504) and beyond
  uint16_t lo = 0, hi = 0x7bff;
  while (lo < hi) {  // the largest code whose value is <= a
    const uint16_t mid = uint16_t((lo + hi + 1) / 2);
    if (double(imdn::from_half(mid)) <= a)
      lo = mid;
    else
      hi = uint16_t(mid - 1);
  }
  const double below = imdn::from_half(lo), above = imdn::from_half(uint16_t(lo + 1));
  uint16_t pick = lo;
  if (a - below > above - a || (a - below == above - a && (lo & 1))) pick = uint16_t(lo + 1);
  return sign | pick;
}

TEST(Half, WidensEveryHalfExactlyAndBack) {
  EXPECT_EQ(imdn::from_half(0x3c00), 1.f);
  EXPECT_EQ(imdn::from_half(0xc000), -2.f);
  EXPECT_EQ(imdn::from_half(0x7bff), 65504.f);
  EXPECT_EQ(imdn::from_half(0x0001), std::ldexp(1.f, -24));  // the smallest subnormal
  EXPECT_EQ(imdn::from_half(0x0400), std::ldexp(1.f, -14));  // the smallest normal
  EXPECT_TRUE(std::isinf(imdn::from_half(0x7c00)));
  EXPECT_TRUE(std::isnan(imdn::from_half(0x7e00)));
  EXPECT_TRUE(std::signbit(imdn::from_half(0x8000)));
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = imdn::from_half(uint16_t(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(imdn::from_half(imdn::to_half(f)))) << h;
      continue;
    }
    ASSERT_EQ(imdn::to_half(f), h) << "half " << h << " = " << f;
  }
}

TEST(Half, RoundsToNearestEven) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<uint32_t> any;
  std::uniform_real_distribution<float> exponent(-30.f, 17.f);
  for (int i = 0; i < 200000; ++i) {
    // Random bit patterns in the half range and around it (subnormals, overflow), and all ties.
    const float v = i % 3 == 0   ? bits_to_float(any(rng))
                    : i % 3 == 1 ? std::ldexp(float(any(rng) % 4096) / 4096.f + 1.f, int(exponent(rng))) *
                                       (any(rng) & 1 ? -1.f : 1.f)
                                 : (float(imdn::from_half(uint16_t(any(rng) % 0x7bff))) +
                                    float(imdn::from_half(uint16_t(any(rng) % 0x7bff + 1)))) /
                                       2.f;
    const uint16_t got = imdn::to_half(v), want = nearest_half(v);
    if (std::isnan(v)) {
      EXPECT_TRUE(std::isnan(imdn::from_half(got)));
      continue;
    }
    ASSERT_EQ(got, want) << v;
  }
  EXPECT_EQ(imdn::to_half(65519.f), 0x7bff);
  EXPECT_EQ(imdn::to_half(65520.f), 0x7c00);
  EXPECT_EQ(imdn::to_half(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(imdn::to_half(std::ldexp(1.f, -25)), 0x0000);   // a tie: to even (zero)
  EXPECT_EQ(imdn::to_half(std::ldexp(1.5f, -25)), 0x0001);  // past the tie
  EXPECT_EQ(imdn::to_half(-std::ldexp(3.f, -25)), 0x8002);  // 1.5 ulp: to even (2)
}

imdn::Image image_of(const std::vector<float>& rgb, size_t h, size_t w) {
  imdn::Image img;
  img.width = w;
  img.height = h;
  img.channels = 3;
  img.data = rgb;
  return img;
}

// An image of 8-bit values (k / 255), as the package's images are: its planes are kept as bytes,
// what Job::estimate assumes.
std::vector<float> eight_bit(std::vector<float> v) {
  for (float& x : v) x = float(imdn::to_u8(x)) / 255.f;
  return v;
}

imdn::JobOptions job_options(size_t tile, int bits, int recompute, bool gathered) {
  imdn::JobOptions o;
  o.tile = tile;
  o.map_bits = bits;
  o.recompute = recompute;
  o.min_tiles = gathered ? 3 : 1;
  return o;
}

// Every unit of the job here, or gathered here and run in `other`.
void run_units(imdn::Job& job, bool gathered, imdn::Network* other) {
  if (!gathered) return job.run();
  for (const imdn::Job::Phase& ph : job.phases())
    for (size_t i = ph.begin; i < ph.begin + ph.count; ++i) job.scatter(i, imdn::run_unit(*other, job.gather(i)));
}

std::vector<float> run_job(imdn::Network& net, const imdn::Image& img, size_t tile, int bits, bool gathered,
                           imdn::Network* other = nullptr, int recompute = -1) {
  imdn::JobOptions o = job_options(tile, bits, recompute, gathered);
  o.raw = true;
  imdn::Job job(net, img, o);
  EXPECT_EQ(job.memory().map_bits, bits);
  EXPECT_EQ(job.memory().recompute, recompute == 1);
  run_units(job, gathered, other);
  return job.take_image().data;
}

// Float16 maps: still the same bytes for any tile size, thread count and instance (the maps are
// rounded where they are stored, the units compute in float32), and close to float32 maps.
TEST(HalfMaps, SameBytesForAnyTilingAndCloseToFloat32) {
  for (imdn::Arch arch : {imdn::Arch::kIMDN, imdn::Arch::kIMDN_RTC, imdn::Arch::kIMDN_RTE, imdn::Arch::kIMDN_AS}) {
    const imdn::Model m = random_model(small_info(arch), 9);
    imdn::Network one(m, 1), two(m, 2);
    const size_t h = 76, w = 60;
    const imdn::Image img = image_of(random_image(h, w, 4), h, w);
    const std::vector<float> f32 = run_job(one, img, 4096, 32, false);
    const std::vector<float> ref = run_job(one, img, 4096, 16, false);
    for (size_t tile : {size_t(8), size_t(16), size_t(34)}) {
      EXPECT_EQ(0, std::memcmp(ref.data(), run_job(two, img, tile, 16, false).data(), ref.size() * 4))
          << imdn::arch_name(arch) << " tile " << tile;
      EXPECT_EQ(0, std::memcmp(ref.data(), run_job(one, img, tile, 16, true, &two).data(), ref.size() * 4))
          << imdn::arch_name(arch) << " tile " << tile << ", units run in another instance";
    }
    double diff = 0, scale = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      diff = std::max(diff, std::fabs(double(ref[i]) - f32[i]));
      scale = std::max(scale, std::fabs(double(f32[i])));
    }
    EXPECT_GT(diff, 0) << imdn::arch_name(arch) << ": float16 maps must round something";
    EXPECT_LT(diff, 4e-3 * std::max(1.0, scale)) << imdn::arch_name(arch);
    std::printf("[ half     ] %s: max |float16 maps - float32 maps| %.2e (outputs up to %.2f)\n", imdn::arch_name(arch),
                diff, scale);
  }
}

// The limit: float32 maps where the job fits, then float16, then smaller tiles, else refused
// before anything is allocated, with what it would need; estimate() plans the same without
// pixels.
TEST(HalfMaps, MemoryLimitPicksThePlanOrRefuses) {
  const imdn::Model m = random_model(small_info(imdn::Arch::kIMDN), 2);
  imdn::Network net(m, 1);
  const size_t h = 300, w = 260;
  const imdn::Image img = image_of(eight_bit(random_image(h, w, 1)), h, w);
  imdn::JobOptions o;
  o.rgba8 = true;
  o.tile = 64;  // (the smallest tile the planner goes down to: precision is all it can change)
  const imdn::JobMemory roomy = imdn::Job::estimate(net, w, h, 3, o);
  EXPECT_EQ(roomy.map_bits, 32);
  EXPECT_EQ(roomy.tile, 64u);
  EXPECT_TRUE(roomy.fits);
  {
    imdn::Job job(net, img, o);
    EXPECT_EQ(job.memory_needed(), roomy.bytes);
    // Values that are not 8-bit (a 16-bit PNG, say): the plane in floats, 3 bytes a value more.
    imdn::Job floats(net, image_of(random_image(h, w, 1), h, w), o);
    EXPECT_EQ(floats.memory_needed(), roomy.bytes + uint64_t(h) * w * 3 * 3);
  }
  // Between the float16 and float32 needs: float16 maps.
  imdn::JobOptions half_opts = o;
  half_opts.map_bits = 16;
  const imdn::JobMemory half = imdn::Job::estimate(net, w, h, 3, half_opts);
  ASSERT_LT(half.bytes, roomy.bytes);
  o.memory_limit = (half.bytes + roomy.bytes) / 2;
  const imdn::JobMemory mid = imdn::Job::estimate(net, w, h, 3, o);
  EXPECT_EQ(mid.map_bits, 16);
  EXPECT_EQ(mid.bytes, half.bytes);
  EXPECT_EQ(mid.float32_bytes, roomy.bytes);
  {
    imdn::Job job(net, img, o);
    EXPECT_EQ(job.memory().map_bits, 16);
    job.run();
    EXPECT_EQ(job.rgba8().size(), job.width() * job.height() * 4);
  }
  // Float32 maps at smaller tiles before float16 maps; float16 at smaller tiles last.
  o.tile = 256;
  o.memory_limit = 0;
  const imdn::JobMemory big_tiles = imdn::Job::estimate(net, w, h, 3, o);
  o.memory_limit = big_tiles.bytes - 1;
  const imdn::JobMemory smaller = imdn::Job::estimate(net, w, h, 3, o);
  EXPECT_EQ(smaller.map_bits, 32);
  EXPECT_LT(smaller.tile, 256u);
  half_opts.tile = 256;
  const imdn::JobMemory half_big = imdn::Job::estimate(net, w, h, 3, half_opts);
  half_opts.memory_limit = half_big.bytes - 1;
  const imdn::JobMemory small = imdn::Job::estimate(net, w, h, 3, half_opts);
  EXPECT_EQ(small.map_bits, 16);
  EXPECT_LT(small.tile, 256u);
  EXPECT_TRUE(small.fits);
  o.tile = 64;
  // Far below: refused, saying how much it needs.
  o.memory_limit = 1 << 20;
  const imdn::JobMemory none = imdn::Job::estimate(net, w, h, 3, o);
  EXPECT_FALSE(none.fits);
  try {
    imdn::Job job(net, img, o);
    FAIL() << "a job over the limit must be refused";
  } catch (const imdn::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("260x300 input needs " + std::to_string((none.bytes + (1 << 20) - 1) >> 20) + " MiB"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("over the memory limit of 1 MiB"), std::string::npos) << msg;
  }
  // A limit above the network's own (what one instance can hold) is the network's.
  net.set_memory_limit(uint64_t(64) << 20);
  o.memory_limit = uint64_t(1) << 40;
  EXPECT_EQ(imdn::Job::estimate(net, w, h, 3, o).limit, uint64_t(64) << 20);
  net.set_memory_limit(uint64_t(8) << 30);
  // Translucent alpha: the estimate without pixels is the larger plan, as the job with them.
  imdn::Image rgba;
  rgba.width = w;
  rgba.height = h;
  rgba.channels = 4;
  rgba.data.assign(w * h * 4, 128 / 255.f);
  imdn::JobOptions a;
  a.rgba8 = true;
  imdn::Job job(net, rgba, a);
  EXPECT_EQ(job.memory_needed(), imdn::Job::estimate(net, w, h, 4, a).bytes);
  EXPECT_GT(job.memory_needed(), imdn::Job::estimate(net, w, h, 3, a).bytes);
}

// A pool's order: units of a phase gathered in order but run and scattered in any order, some
// gathered only after others were scattered (what recomputed blocks' patches are for, plan.h).
std::vector<float> run_scrambled(imdn::Network& net, imdn::Network& other, const imdn::Image& img, size_t tile,
                                 int bits, unsigned seed) {
  imdn::JobOptions o;
  o.raw = true;
  o.tile = tile;
  o.map_bits = bits;
  o.recompute = 1;
  imdn::Job job(net, img, o);
  std::mt19937 rng(seed);
  for (const imdn::Job::Phase& ph : job.phases()) {
    std::vector<std::pair<size_t, imdn::UnitData>> running;
    size_t next = ph.begin;
    while (next < ph.begin + ph.count || !running.empty()) {
      if (next < ph.begin + ph.count && (running.empty() || rng() % 2)) {
        running.emplace_back(next, job.gather(next));
        ++next;
        continue;
      }
      const size_t k = rng() % running.size();
      job.scatter(running[k].first, imdn::run_unit(other, std::move(running[k].second)));
      running.erase(running.begin() + long(k));
    }
  }
  return job.take_image().data;
}

// Blocks recomputed instead of the concatenation stored (plan.h): the same bytes as stored maps of
// the same precision, for any tiling, thread count, instance and order of units; no cat map.
TEST(RecomputedBlocks, SameBytesAsStoredMaps) {
  for (imdn::Arch arch : {imdn::Arch::kIMDN, imdn::Arch::kIMDN_RTC, imdn::Arch::kIMDN_RTE, imdn::Arch::kIMDN_AS}) {
    const imdn::Model m = random_model(small_info(arch), 4);
    imdn::Network one(m, 1), two(m, 2);
    const size_t h = 100, w = 92;
    const imdn::Image img = image_of(random_image(h, w, 6), h, w);
    for (int bits : {32, 16}) {
      const std::vector<float> stored = run_job(one, img, 4096, bits, false);
      const std::vector<float> whole = run_job(one, img, 4096, bits, false, nullptr, 1);
      if (bits == 32) {
        EXPECT_EQ(0, std::memcmp(stored.data(), whole.data(), stored.size() * 4)) << imdn::arch_name(arch);
      }
      for (size_t tile : {size_t(8), size_t(32), size_t(40)}) {
        const std::string what =
            std::string(imdn::arch_name(arch)) + " float" + std::to_string(bits) + " tile " + std::to_string(tile);
        EXPECT_EQ(0,
                  std::memcmp(whole.data(), run_job(two, img, tile, bits, false, nullptr, 1).data(), whole.size() * 4))
            << what;
        EXPECT_EQ(0, std::memcmp(whole.data(), run_job(one, img, tile, bits, true, &two, 1).data(), whole.size() * 4))
            << what << ", units run in another instance";
        for (unsigned seed : {1u, 2u}) {
          EXPECT_EQ(0,
                    std::memcmp(whole.data(), run_scrambled(one, two, img, tile, bits, seed).data(), whole.size() * 4))
              << what << ", units scattered out of order (seed " << seed << ")";
        }
      }
      if (bits == 16) {
        // Float16 x and acc, the concatenation never rounded: close to stored float16 maps.
        double diff = 0;
        for (size_t i = 0; i < stored.size(); ++i) diff = std::max(diff, std::fabs(double(stored[i]) - whole[i]));
        EXPECT_LT(diff, 4e-3) << imdn::arch_name(arch);
      }
    }
  }
}

// Under a limit: recomputed blocks only where float16 maps do not fit, then refused; the plan
// says so, and the estimate without pixels is what the job holds.
TEST(RecomputedBlocks, MemoryLimitPicksThemLast) {
  imdn::ModelInfo info = small_info(imdn::Arch::kIMDN);
  info.nf = 64;  // (as the authors' models: a 64-channel concatenation, more than a tile's scratch)
  info.blocks = 1;
  const imdn::Model m = random_model(info, 2);
  imdn::Network net(m, 2);
  const size_t h = 400, w = 376;
  const imdn::Image img = image_of(eight_bit(random_image(h, w, 1)), h, w);
  imdn::JobOptions o;
  o.rgba8 = true;
  o.tile = 64;
  imdn::JobOptions half_opts = o, whole_opts = o;
  half_opts.map_bits = 16;
  half_opts.recompute = -1;
  whole_opts.map_bits = 16;
  whole_opts.recompute = 1;
  const imdn::JobMemory half = imdn::Job::estimate(net, w, h, 3, half_opts);
  const imdn::JobMemory whole = imdn::Job::estimate(net, w, h, 3, whole_opts);
  EXPECT_TRUE(whole.recompute);
  EXPECT_FALSE(half.recompute);
  ASSERT_LT(whole.bytes, half.bytes);
  // The maps: x, cat and acc (64 channels each) stored against x and acc recomputed, less what a
  // recomputing unit holds more (its scratch, the old x kept for its neighbours).
  EXPECT_GT(half.bytes - whole.bytes, uint64_t(h) * w * 64 * 2 / 2);
  o.memory_limit = half.bytes;
  EXPECT_FALSE(imdn::Job::estimate(net, w, h, 3, o).recompute);
  o.memory_limit = half.bytes - 1;
  const imdn::JobMemory picked = imdn::Job::estimate(net, w, h, 3, o);
  EXPECT_TRUE(picked.recompute);
  EXPECT_EQ(picked.map_bits, 16);
  EXPECT_TRUE(picked.fits);
  EXPECT_LE(picked.bytes, o.memory_limit);
  {
    imdn::Job job(net, img, o);
    EXPECT_TRUE(job.memory().recompute);
    EXPECT_EQ(job.memory_needed(), picked.bytes);
    job.run();
    EXPECT_EQ(job.rgba8().size(), job.width() * job.height() * 4);
  }
  o.memory_limit = whole.bytes / 2;
  const imdn::JobMemory none = imdn::Job::estimate(net, w, h, 3, o);
  EXPECT_FALSE(none.fits);
  EXPECT_NE(none.why.find("blocks recomputed"), std::string::npos) << none.why;
  // Never where the caller says so.
  o.recompute = -1;
  o.memory_limit = half.bytes - 1;
  EXPECT_FALSE(imdn::Job::estimate(net, w, h, 3, o).fits);
  // Tiles: from 192 down (then 160, 128, 64) where blocks are recomputed, their halos paid twice;
  // float16 maps kept start at 128. (A larger image, whose maps outweigh the tiles' scratch.)
  const size_t H = 1000, W = 960;
  o.recompute = 0;
  o.tile = 256;
  std::vector<size_t> tiles;
  uint64_t last = 0;
  for (size_t t : {size_t(192), size_t(160), size_t(128), size_t(64)}) {
    imdn::JobOptions at = o;
    at.tile = t;
    at.map_bits = 16;
    at.recompute = 1;
    at.memory_limit = 0;
    const uint64_t bytes = imdn::Job::estimate(net, W, H, 3, at).bytes;
    if (last) EXPECT_LT(bytes, last) << t;
    last = bytes;
    o.memory_limit = bytes;
    const imdn::JobMemory p = imdn::Job::estimate(net, W, H, 3, o);
    EXPECT_TRUE(p.recompute && p.fits) << t;
    tiles.push_back(p.tile);
  }
  EXPECT_EQ(tiles, (std::vector<size_t>{192, 160, 128, 64}));
  imdn::JobOptions kept = half_opts;
  kept.tile = 128;
  o.memory_limit = imdn::Job::estimate(net, W, H, 3, kept).bytes;
  const imdn::JobMemory p = imdn::Job::estimate(net, W, H, 3, o);
  EXPECT_EQ(p.tile, 128u);
  EXPECT_FALSE(p.recompute);
}

// Without attention (RTC, RTE) a block is one phase when recomputed, its steps run once: always so,
// with float32 maps and the asked tiles. Memory: without the concatenation map, with a larger
// scratch (the core's copies): less for RTC; for RTE, whose maps are small beside its tail and
// output, about the same.
TEST(RecomputedBlocks, AlwaysWithoutAttention) {
  for (imdn::Arch arch : {imdn::Arch::kIMDN_RTC, imdn::Arch::kIMDN_RTE}) {
    const imdn::Model m = random_model(small_info(arch), 3);
    imdn::Network net(m, 1);
    imdn::JobOptions o;
    o.rgba8 = true;
    o.tile = 256;
    const imdn::JobMemory plan = imdn::Job::estimate(net, 700, 500, 3, o);
    EXPECT_TRUE(plan.recompute) << imdn::arch_name(arch);
    EXPECT_EQ(plan.map_bits, 32) << imdn::arch_name(arch);
    EXPECT_EQ(plan.tile, 256u) << imdn::arch_name(arch);
    o.recompute = -1;
    const imdn::JobMemory kept = imdn::Job::estimate(net, 700, 500, 3, o);
    EXPECT_FALSE(kept.recompute);
    if (arch == imdn::Arch::kIMDN_RTC)
      EXPECT_LT(plan.bytes, kept.bytes);
    else
      EXPECT_LT(double(plan.bytes), 1.05 * double(kept.bytes));
    o.recompute = 0;
    imdn::Job job(net, image_of(random_image(60, 50, 2), 60, 50), o);
    size_t phases_per_block = 0;
    for (const imdn::Job::Phase& ph : job.phases())
      phases_per_block += job.unit(ph.begin).kind == imdn::UnitKind::kBlockWhole;
    EXPECT_EQ(phases_per_block, net.blocks()) << imdn::arch_name(arch);
    EXPECT_EQ(job.phases().size(), net.blocks() + 2) << imdn::arch_name(arch) << ": stem, the blocks, tail";
  }
}

// The authors' models over Set5 with float16 maps (what a job gets when float32 ones do not fit
// its memory limit): within one level of 255 of float32 maps, and few values moved at all.
TEST(HalfMaps, OfficialModelsWithinOneLevelOfFloat32Maps) {
  REQUIRE_FILE(imdn_dir() + "/datasets/Set5_HR/baby.bmp");
  for (const auto& [model, lr] : std::vector<std::pair<std::string, std::string>>{
           {"IMDN_x2", "x2"}, {"IMDN_x3", "x3"}, {"IMDN_x4", "x4"}, {"IMDN_RTC", "x2"}, {"IMDN_RTE", "x2"}}) {
    imdn::Network net(imdn::load_model_file(models_dir() + "/" + model + ".imdn"), 0);
    size_t moved = 0, total = 0;
    double raw = 0;
    for (const char* name : {"baby", "butterfly"}) {
      const imdn::Image img = imdn::load_image(imdn_dir() + "/datasets/Set5_LR/" + lr + "/" + name + lr + ".bmp");
      const std::vector<float> f32 = run_job(net, img, 128, 32, false), f16 = run_job(net, img, 128, 16, false);
      for (size_t i = 0; i < f32.size(); ++i) {
        const int d = std::abs(int(imdn::to_u8(f32[i])) - int(imdn::to_u8(f16[i])));
        ASSERT_LE(d, 1) << model << " " << name;
        moved += d != 0;
        raw = std::max(raw, std::fabs(double(f32[i]) - f16[i]));
      }
      total += f32.size();
    }
    std::printf("[ half     ] %s: float16 maps move %.3f%% of 8-bit values by one level, max raw %.2e\n", model.c_str(),
                100.0 * double(moved) / double(total), raw);
    EXPECT_LT(double(moved), 0.03 * double(total)) << model;
  }
}

// External memory (JobOptions::external; WebAssembly: JavaScript ArrayBuffers), here vectors:
// float16 maps and the RGBA output live there, read and written by rows.
class VectorStore final : public imdn::ExternalStore {
 public:
  std::map<int, std::vector<uint8_t>> live;
  std::vector<uint8_t> result;  // the output, as the caller gets it when the job releases it
  int next = 0, maps = 0, results = 0;
  uint64_t bytes = 0, peak = 0;

  int allocate(uint64_t n, uint32_t fill, bool is_result) override {
    std::vector<uint8_t>& b = live[++next];
    b.assign(n, 0);
    for (uint64_t i = 0; fill && i + 4 <= n; i += 4) std::memcpy(b.data() + i, &fill, 4);
    (is_result ? results : maps)++;
    if (is_result) result_id = next;
    peak = std::max(peak, bytes += n);
    return next;
  }
  void release(int id) override {
    auto it = live.find(id);
    ASSERT_NE(it, live.end()) << "buffer " << id << " released twice";
    bytes -= it->second.size();
    if (id == result_id) result = std::move(it->second);
    live.erase(it);
  }
  void read(int id, uint64_t offset, size_t row, uint64_t stride, size_t rows, void* p) const override {
    const std::vector<uint8_t>& b = live.at(id);
    for (size_t y = 0; y < rows; ++y) {
      ASSERT_LE(offset + y * stride + row, b.size());
      std::memcpy(static_cast<uint8_t*>(p) + y * row, b.data() + offset + y * stride, row);
    }
  }
  void write(int id, uint64_t offset, size_t row, uint64_t stride, size_t rows, const void* p) override {
    std::vector<uint8_t>& b = live.at(id);
    for (size_t y = 0; y < rows; ++y) {
      ASSERT_LE(offset + y * stride + row, b.size());
      std::memcpy(b.data() + offset + y * stride, static_cast<const uint8_t*>(p) + y * row, row);
    }
  }

 private:
  int result_id = -1;
};

// The same RGBA bytes with maps and output outside as inside, for colour, grey and translucent
// images, stored and recomputed blocks, any tiling, units run here or gathered; float32 maps stay
// inside; every buffer given back when the job ends.
TEST(ExternalMemory, SameBytesAsInsideAndEverythingGivenBack) {
  const imdn::Model m = random_model(small_info(imdn::Arch::kIMDN), 5);
  imdn::Network one(m, 1), two(m, 2);
  const size_t h = 70, w = 58;
  const std::vector<float> rgb = random_image(h, w, 3);
  imdn::Image colour = image_of(rgb, h, w), grey = colour, alpha = colour;
  for (size_t p = 0; p < h * w; ++p) grey.data[p * 3 + 1] = grey.data[p * 3 + 2] = grey.data[p * 3];
  alpha.channels = 4;
  alpha.data.resize(h * w * 4);
  for (size_t p = 0; p < h * w; ++p) {
    std::copy_n(rgb.data() + p * 3, 3, alpha.data.data() + p * 4);
    alpha.data[p * 4 + 3] = float((p * 37) % 256) / 255.f;
  }
  for (const auto& [name, img] : std::vector<std::pair<const char*, const imdn::Image*>>{
           {"colour", &colour}, {"grey", &grey}, {"translucent", &alpha}}) {
    for (int bits : {16, 32}) {
      for (int recompute : {-1, 1}) {
        for (size_t tile : {size_t(16), size_t(4096)}) {
          for (bool gathered : {false, true}) {
            const std::string what = std::string(name) + " float" + std::to_string(bits) +
                                     (recompute == 1 ? " recomputed" : " stored") + " tile " + std::to_string(tile) +
                                     (gathered ? " gathered" : "");
            imdn::JobOptions o = job_options(tile, bits, recompute, gathered);
            o.rgba8 = true;
            std::vector<uint8_t> inside;
            {
              imdn::Job job(one, *img, o);
              run_units(job, gathered, &two);
              inside = job.rgba8();
              EXPECT_EQ(job.output_buffer(), -1);
            }
            VectorStore store;
            o.external = &store;
            {
              imdn::Job job(one, *img, o);
              run_units(job, gathered, &two);
              EXPECT_TRUE(job.rgba8().empty()) << what;
              ASSERT_GE(job.output_buffer(), 0) << what;
              std::vector<uint8_t> corner(3 * 5 * 4), expect;
              job.read_rgba8({2, 1, 3, 5}, corner.data());
              for (size_t y = 2; y < 5; ++y)
                expect.insert(expect.end(), inside.begin() + long((y * job.width() + 1) * 4),
                              inside.begin() + long((y * job.width() + 6) * 4));
              EXPECT_EQ(corner, expect) << what << ": read_rgba8";
            }
            EXPECT_TRUE(store.live.empty()) << what << ": every buffer given back";
            EXPECT_EQ(store.results, 1) << what;
            EXPECT_EQ(store.maps, bits == 16 ? (img == &alpha ? 4 : 2) : 0) << what << ": x and acc of each pass";
            ASSERT_EQ(store.result.size(), inside.size()) << what;
            EXPECT_EQ(0, std::memcmp(store.result.data(), inside.data(), inside.size())) << what;
          }
        }
      }
    }
  }
}

// Blocks streamed down strips of the whole height, in rings of rows (plan.h), recomputed or kept:
// the same bytes as on tiles, for any strip width (one, or several whose halos overlap: patches), height
// (bands cut short at the bottom), thread count, map precision and memory; Winograd convolutions
// only (natively the default is XNNPACK's).
TEST(StreamedBlocks, SameBytesAsTiles) {
  for (imdn::Arch arch : {imdn::Arch::kIMDN, imdn::Arch::kIMDN_RTC, imdn::Arch::kIMDN_RTE, imdn::Arch::kIMDN_AS}) {
    imdn::ModelInfo info = small_info(arch);
    if (arch == imdn::Arch::kIMDN_RTE) {
      // (Its last step reads nf / 4 channels: at nf 20 too few for Winograd, so not streamed.)
      imdn::Network direct(random_model(info, 7), 1, imdn::Convolutions::kWinograd);
      imdn::JobOptions o = job_options(24, 32, 1, false);
      o.executor = imdn::Executor::kInstance;
      EXPECT_FALSE(direct.can_stream());
      EXPECT_FALSE(imdn::Job::estimate(direct, 64, 64, 3, o).streamed);
      info.nf = 32;
    }
    const imdn::Model m = random_model(info, 7);
    imdn::Network one(m, 1, imdn::Convolutions::kWinograd), two(m, 2, imdn::Convolutions::kWinograd);
    ASSERT_TRUE(one.can_stream()) << imdn::arch_name(arch);
    for (auto [h, w] : {std::pair<size_t, size_t>{100, 92}, {36, 132}, {8, 20}, {131, 44}, {1, 1}, {3, 50}}) {
      if (arch == imdn::Arch::kIMDN_AS) h = std::max<size_t>(4, h / 4 * 4), w = std::max<size_t>(4, w / 4 * 4);
      const imdn::Image img = image_of(eight_bit(random_image(h, w, 8)), h, w);
      for (auto [bits, recompute] : {std::pair{32, 1}, {16, 1}, {32, -1}, {16, -1}}) {
        const std::vector<float> tiles = run_job(one, img, 24, bits, false, nullptr, recompute);
        for (size_t strip : {size_t(0), size_t(32), size_t(64)}) {
          for (imdn::Network* net : {&one, &two}) {
            for (bool outside : {false, true}) {
              if (outside && bits == 32) continue;
              const std::string what = std::string(imdn::arch_name(arch)) + " " + std::to_string(w) + "x" +
                                       std::to_string(h) + " float" + std::to_string(bits) +
                                       (recompute == 1 ? " recomputed" : " kept") + " strip " + std::to_string(strip) +
                                       (net == &two ? " two threads" : "") + (outside ? " external" : "");
              imdn::JobOptions o = job_options(24, bits, recompute, false);
              o.raw = true;
              o.executor = imdn::Executor::kInstance;
              o.strip = strip;
              VectorStore store;
              if (outside) o.external = &store;
              imdn::Job job(*net, img, o);
              // (Kept blocks only where tiles of 24 body pixels would cut the image.)
              const size_t S = net->stem_stride();
              EXPECT_EQ(job.memory().streamed, recompute == 1 || (h + S - 1) / S > 24 || (w + S - 1) / S > 24) << what;
              size_t last = 0, calls = 0;
              job.run([&](size_t done, size_t total, const imdn::Rect&) {
                EXPECT_GE(done, last) << what;
                EXPECT_LE(done, total) << what;
                last = done;
                ++calls;
              });
              const std::vector<float> got = job.take_image().data;
              ASSERT_EQ(got.size(), tiles.size()) << what;
              EXPECT_EQ(0, std::memcmp(got.data(), tiles.data(), got.size() * 4)) << what;
              EXPECT_TRUE(store.live.empty()) << what;
            }
          }
        }
      }
    }
  }
}

// Streamed blocks hold rings of rows, not crops: under a limit they come before tiles, and a job
// planned for a pool (Executor::kUnits) never gets them; the estimate covers what the job holds.
TEST(StreamedBlocks, PlannedUnderTheLimitBeforeTiles) {
  imdn::ModelInfo info = small_info(imdn::Arch::kIMDN);  // IMDN x4's own shape: nf 64, 6 blocks
  info.nf = 64;
  info.blocks = 6;
  info.scale = info.upsample = 4;
  const imdn::Model m = random_model(info, 3);
  imdn::Network net(m, 1, imdn::Convolutions::kWinograd);
  imdn::JobOptions o;
  o.rgba8 = true;
  o.executor = imdn::Executor::kInstance;
  o.memory_limit = uint64_t(352) << 20;
  const imdn::JobMemory big = imdn::Job::estimate(net, 1024, 1024, 3, o);
  EXPECT_TRUE(big.fits && big.recompute && big.streamed) << big.bytes;
  o.executor = imdn::Executor::kUnits;
  const imdn::JobMemory tiled = imdn::Job::estimate(net, 1024, 1024, 3, o);
  EXPECT_TRUE(tiled.recompute && !tiled.streamed);
  EXPECT_LT(big.bytes, tiled.bytes);
  // Kept maps still come first where they fit.
  o.executor = imdn::Executor::kInstance;
  EXPECT_FALSE(imdn::Job::estimate(net, 512, 512, 3, o).recompute);
  // Strips narrower than the image where the whole width does not fit.
  o.memory_limit = big.bytes - (4 << 20);
  const imdn::JobMemory narrow = imdn::Job::estimate(net, 1024, 1024, 3, o);
  EXPECT_TRUE(narrow.streamed && narrow.fits) << narrow.bytes;
  // A gathered unit of a streamed job is refused (it would be the whole strip).
  const size_t h = 40, w = 36;
  imdn::Network small(random_model(small_info(imdn::Arch::kIMDN), 2), 1, imdn::Convolutions::kWinograd);
  imdn::JobOptions s = job_options(16, 32, 1, false);
  s.executor = imdn::Executor::kInstance;
  s.raw = true;
  imdn::Job job(small, image_of(random_image(h, w, 1), h, w), s);
  ASSERT_TRUE(job.memory().streamed);
  for (const imdn::Job::Phase& ph : job.phases()) {
    const imdn::Job::Unit& u = job.unit(ph.begin);
    if (u.kind == imdn::UnitKind::kBlockSums) {
      EXPECT_THROW(job.gather(ph.begin), imdn::Error);
      break;
    }
    for (size_t i = ph.begin; i < ph.begin + ph.count; ++i) job.run_here(i);
  }
}

}  // namespace
