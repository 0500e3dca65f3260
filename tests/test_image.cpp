// Images in and out: what stb decodes, what we refuse, and how grey, alpha and 16-bit images come
// through the upscaler.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "bytes.h"
#include "image.h"
#include "naive.h"
#include "support.h"
#include "upscaler.h"

using namespace testing_support;

namespace {

// A PNG with 16-bit grey samples, deflate "stored" blocks (no compression), built by hand because
// stb_image_write only writes 8-bit.
std::vector<uint8_t> png16_gray(size_t w, size_t h, const std::vector<uint16_t>& px) {
  std::vector<uint8_t> raw;
  for (size_t y = 0; y < h; ++y) {
    raw.push_back(0);  // filter: none
    for (size_t x = 0; x < w; ++x) {
      raw.push_back(uint8_t(px[y * w + x] >> 8));
      raw.push_back(uint8_t(px[y * w + x]));
    }
  }
  std::vector<uint8_t> z = {0x78, 0x01};
  for (size_t off = 0; off < raw.size() || off == 0;) {
    const size_t n = std::min<size_t>(65535, raw.size() - off);
    z.push_back(off + n == raw.size() ? 1 : 0);
    z.push_back(uint8_t(n));
    z.push_back(uint8_t(n >> 8));
    z.push_back(uint8_t(~n));
    z.push_back(uint8_t(~n >> 8));
    z.insert(z.end(), raw.begin() + long(off), raw.begin() + long(off + n));
    off += n;
    if (n == 0) break;
  }
  uint32_t a = 1, b = 0;
  for (uint8_t v : raw) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  const uint32_t adler = b << 16 | a;
  for (int k = 3; k >= 0; --k) z.push_back(uint8_t(adler >> (8 * k)));
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  auto chunk = [&](const char* type, const std::vector<uint8_t>& data) {
    for (int k = 3; k >= 0; --k) png.push_back(uint8_t(data.size() >> (8 * k)));
    std::vector<uint8_t> td(type, type + 4);
    td.insert(td.end(), data.begin(), data.end());
    png.insert(png.end(), td.begin(), td.end());
    const uint32_t c = imdn::crc32(td.data(), td.size());
    for (int k = 3; k >= 0; --k) png.push_back(uint8_t(c >> (8 * k)));
  };
  std::vector<uint8_t> ihdr;
  for (size_t v : {w, h})
    for (int k = 3; k >= 0; --k) ihdr.push_back(uint8_t(v >> (8 * k)));
  ihdr.insert(ihdr.end(), {16, 0, 0, 0, 0});  // depth 16, grey
  chunk("IHDR", ihdr);
  chunk("IDAT", z);
  chunk("IEND", {});
  return png;
}

imdn::Image make(size_t w, size_t h, int channels, unsigned seed) {
  imdn::Image img;
  img.width = w;
  img.height = h;
  img.channels = channels;
  img.data = random_image(h, w * size_t(channels), seed);
  img.data.resize(w * h * size_t(channels));
  for (float& v : img.data) v = std::round(v * 255.f) / 255.f;
  return img;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const imdn::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Image, PngRoundTripKeepsChannels) {
  for (int ch = 1; ch <= 4; ++ch) {
    const imdn::Image img = make(7, 5, ch, unsigned(ch));
    const std::vector<uint8_t> png = imdn::encode_png(img);
    const imdn::Image back = imdn::decode_image(png.data(), png.size());
    EXPECT_EQ(back.channels, ch);
    EXPECT_EQ(back.width, 7u);
    EXPECT_EQ(back.height, 5u);
    EXPECT_EQ(back.data, img.data);
  }
}

TEST(Image, Decodes16BitPng) {
  const std::vector<uint16_t> px = {0, 1, 257, 65535, 30000, 12345};
  const std::vector<uint8_t> png = png16_gray(3, 2, px);
  const imdn::Image img = imdn::decode_image(png.data(), png.size());
  EXPECT_EQ(img.bit_depth, 16);
  EXPECT_EQ(img.channels, 1);
  for (size_t i = 0; i < px.size(); ++i) EXPECT_FLOAT_EQ(img.data[i], px[i] / 65535.f);
}

TEST(Image, RefusesCorruptAndEmptyData) {
  const imdn::Image img = make(8, 8, 3, 1);
  std::vector<uint8_t> png = imdn::encode_png(img);
  EXPECT_NE(error_of([&] { imdn::decode_image(png.data(), 0); }).find("empty"), std::string::npos);
  const std::string text = "this is not an image at all";
  EXPECT_NE(error_of([&] {
              imdn::decode_image(reinterpret_cast<const uint8_t*>(text.data()), text.size());
            }).find("cannot decode image"),
            std::string::npos);
  std::vector<uint8_t> cut(png.begin(), png.begin() + long(png.size() / 2));
  EXPECT_NE(error_of([&] { imdn::decode_image(cut.data(), cut.size()); }).find("cannot decode image"),
            std::string::npos);
  // A header that claims 1,000,000 x 1,000,000 pixels is refused before any allocation.
  std::vector<uint8_t> huge = png16_gray(1, 1, {0});
  for (int field : {16, 20}) {
    huge[size_t(field)] = 0x00;
    huge[size_t(field) + 1] = 0x0F;
    huge[size_t(field) + 2] = 0x42;
    huge[size_t(field) + 3] = 0x40;
  }
  const uint32_t c = imdn::crc32(huge.data() + 12, 17);
  for (int k = 0; k < 4; ++k) huge[29 + size_t(k)] = uint8_t(c >> (8 * (3 - k)));
  const std::string e = error_of([&] { imdn::decode_image(huge.data(), huge.size()); });
  EXPECT_FALSE(e.empty());
}

TEST(Upscaler, GreyStaysGreyAndAlphaIsUpscaled) {
  const imdn::Model m = random_model(small_info(imdn::Arch::kIMDN_RTC), 4);
  imdn::Upscaler up(m, 1);
  // Grey: the output is the network's output on R = G = B, averaged.
  const imdn::Image grey = make(6, 5, 1, 2);
  const imdn::Image out = up.upscale(grey);
  EXPECT_EQ(out.channels, 1);
  EXPECT_EQ(out.width, 12u);
  EXPECT_EQ(out.height, 10u);
  std::vector<float> rgb;
  for (float v : grey.data) rgb.insert(rgb.end(), {v, v, v});
  const std::vector<float> ref = naive::to_hwc(naive::forward(m, naive::from_hwc(rgb.data(), 5, 6)));
  for (size_t p = 0; p < 120; ++p) {
    EXPECT_NEAR(out.data[p], (ref[p * 3] + ref[p * 3 + 1] + ref[p * 3 + 2]) / 3, 1e-5);
  }
  // RGBA with varying alpha: alpha is upscaled like a grey image, and colour is unchanged by it.
  imdn::Image rgba = make(6, 5, 4, 3);
  const imdn::Image a_out = up.upscale(rgba);
  ASSERT_EQ(a_out.channels, 4);
  std::vector<float> alpha_rgb;
  for (size_t p = 0; p < 30; ++p) alpha_rgb.insert(alpha_rgb.end(), 3, rgba.data[p * 4 + 3]);
  const std::vector<float> aref = naive::to_hwc(naive::forward(m, naive::from_hwc(alpha_rgb.data(), 5, 6)));
  for (size_t p = 0; p < 120; ++p) {
    const float want = std::min(1.f, std::max(0.f, (aref[p * 3] + aref[p * 3 + 1] + aref[p * 3 + 2]) / 3));
    EXPECT_NEAR(a_out.data[p * 4 + 3], want, 1e-5);
  }
  // Fully opaque stays fully opaque.
  for (size_t p = 0; p < 30; ++p) rgba.data[p * 4 + 3] = 1.f;
  const imdn::Image opaque = up.upscale(rgba);
  for (size_t p = 0; p < 120; ++p) EXPECT_EQ(opaque.data[p * 4 + 3], 1.f);
}

TEST(Upscaler, AnyScaleIsForImdnAsOnly) {
  imdn::Upscaler rtc(random_model(small_info(imdn::Arch::kIMDN_RTC), 4), 1);
  imdn::UpscaleOptions o;
  o.target_width = 30;
  o.target_height = 20;
  EXPECT_NE(error_of([&] { rtc.upscale(make(6, 5, 3, 1), o); }).find("needs the IMDN_AS model"), std::string::npos);

  imdn::Upscaler as(random_model(small_info(imdn::Arch::kIMDN_AS), 4), 1);
  const imdn::Image out = as.upscale(make(6, 5, 3, 1), o);  // 5x6 -> 30x20: 30 is not a multiple of 4
  EXPECT_EQ(out.width, 30u);
  EXPECT_EQ(out.height, 20u);
  for (float v : out.data) EXPECT_TRUE(std::isfinite(v));
}

TEST(Upscaler, ImdnAsAnySizeUsesTheAuthorsCropping) {
  // 70x66 is not a multiple of 4: four 64x64 crops (side/2 + 32, rounded down to a multiple of 4),
  // quadrants stitched; the bottom-right quadrant equals a whole pass over the bottom-right crop.
  const imdn::Model m = random_model(small_info(imdn::Arch::kIMDN_AS), 9);
  imdn::Upscaler up(m, 1);
  const size_t h = 66, w = 70;
  const std::vector<float> in = random_image(h, w, 5);
  size_t oh = 0, ow = 0;
  const std::vector<float> out = up.run_rgb(in.data(), h, w, &oh, &ow);
  ASSERT_EQ(oh, h);
  ASSERT_EQ(ow, w);
  const size_t hs = 64, ws = 64;  // h/2 + 32 - (h/2 + 32) % 4, likewise w
  std::vector<float> crop(hs * ws * 3);
  for (size_t y = 0; y < hs; ++y)
    for (size_t x = 0; x < ws; ++x)
      for (size_t c = 0; c < 3; ++c) crop[(y * ws + x) * 3 + c] = in[((h - hs + y) * w + (w - ws + x)) * 3 + c];
  const std::vector<float> ref = naive::to_hwc(naive::forward(m, naive::from_hwc(crop.data(), int(hs), int(ws))));
  for (size_t y = h / 2; y < h; ++y)
    for (size_t x = w / 2; x < w; ++x)
      for (size_t c = 0; c < 3; ++c) {
        ASSERT_NEAR(out[(y * w + x) * 3 + c], ref[((y - (h - hs)) * ws + (x - (w - ws))) * 3 + c], 2e-5);
      }
  // Too small for the crops: edge padding, still the input size.
  const std::vector<float> tiny = random_image(3, 5, 6);
  const std::vector<float> t_out = up.run_rgb(tiny.data(), 3, 5, &oh, &ow);
  EXPECT_EQ(oh, 3u);
  EXPECT_EQ(ow, 5u);
  EXPECT_EQ(t_out.size(), 45u);
}

TEST(Upscaler, RefusesAbsurdSizes) {
  imdn::Upscaler up(random_model(small_info(imdn::Arch::kIMDN_RTC), 4), 1);
  EXPECT_NE(error_of([&] { up.output_size(0, 10); }).find("empty"), std::string::npos);
  EXPECT_NE(error_of([&] { up.output_size(100000, 100000); }).find("too large"), std::string::npos);
  up.set_memory_limit(1 << 20);
  EXPECT_NE(error_of([&] { up.upscale(make(64, 64, 3, 1)); }).find("over the memory limit of 1 MiB"),
            std::string::npos);
}

TEST(Upscaler, ReportsProgressOverBothPassesAndStopsWhenAsked) {
  imdn::Upscaler up(random_model(small_info(imdn::Arch::kIMDN), 4), 1);
  imdn::Image rgba = make(40, 24, 4, 1);
  for (size_t p = 0; p < 40 * 24; ++p) rgba.data[p * 4 + 3] = float(p % 7) / 7.f;  // not opaque: two passes
  imdn::UpscaleOptions o;
  o.tile = 16;
  std::vector<std::pair<size_t, size_t>> seen;
  o.progress = [&](size_t done, size_t total) { seen.emplace_back(done, total); };
  const imdn::Image whole = up.upscale(rgba, o);
  ASSERT_FALSE(seen.empty());
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].first, i + 1);  // one call per unit, in order, over both passes
    EXPECT_EQ(seen[i].second, seen.size());
  }
  // A callback that throws stops the work at once; the upscaler then runs as before.
  size_t calls = 0;
  o.progress = [&](size_t, size_t) {
    if (++calls == 3) throw std::runtime_error("stop");
  };
  EXPECT_THROW(up.upscale(rgba, o), std::runtime_error);
  EXPECT_EQ(calls, 3u);
  o.progress = nullptr;
  const imdn::Image again = up.upscale(rgba, o);
  ASSERT_EQ(again.data.size(), whole.data.size());
  for (size_t i = 0; i < whole.data.size(); ++i) ASSERT_EQ(again.data[i], whole.data[i]);
}

// A field of /proc/self/status, in KiB.
long kib_of(const char* field) {
  FILE* f = std::fopen("/proc/self/status", "r");
  char line[256];
  long v = 0;
  while (f && std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, field, std::strlen(field)) == 0) v = std::atol(line + std::strlen(field));
  }
  if (f) std::fclose(f);
  return v;
}

// The reproducers of the hardening issue (../shared/imdn-repro, copied to tests/data/repro, with
// what the fuzzers found since): decode
// bombs claiming 178 to 268 megapixels in 19-70 bytes, and inputs that crashed stb_image v2.27.
// Each is refused with a message, in a child process whose peak resident memory is measured.
TEST(Image, DecodeBombsAndCrashReproducersAreRefusedWithoutLargeAllocations) {
  struct Case {
    const char* file;
    const char* message;
  };
  for (const Case& c :
       {Case{"min_bmp_70B_decodes_16384x16384.bmp", "16384x16384"},
        Case{"min_tga_22B_decodes_13136x13578.tga", "13136x13578"},
        Case{"min_pnm_19B_decodes_253x255253.ppm", "need at least 193737027 bytes, but the file has 19"},
        Case{"min_stb_jpeg_huffman_oob.jpg", "cannot decode image"},
        Case{"min_stb_pnm_int_overflow.pnm", "cannot decode image"},
        // Found by tools/fuzz.sh: a BMP whose compression field has high bits set (stb reads it raw),
        // and a PNG with an empty IDAT chunk (stb copied it from a null pointer).
        Case{"fuzz_bmp_355B_decodes_9x65535.bmp", "need at least 2359260 bytes, but the file has 355"},
        Case{"fuzz_png_empty_idat_null_memcpy.png", "cannot decode image"},
        // and a 331-byte PNG whose second IDAT claims 889 MB (stb reserved it: 1 GiB).
        Case{"fuzz_png_idat_claims_889MB.png", "chunk IDAT claims 889192448 bytes, but the file has 8 left"}}) {
    const std::string path = std::string(IMDN_TEST_DATA_DIR) + "/repro/" + c.file;
    const std::vector<uint8_t> bytes = imdn::read_file(path, 1 << 20);
    // With the default limit, and with the largest limit there is: the size check alone holds then.
    for (size_t limit : {imdn::kDefaultMaxInputPixels, imdn::kMaxImagePixels}) {
      std::string error;
      try {
        imdn::decode_image(bytes.data(), bytes.size(), limit);
      } catch (const imdn::Error& e) {
        error = e.what();
      }
      if (limit == imdn::kMaxImagePixels && std::string(c.file).find("decodes_") != std::string::npos) {
        EXPECT_NE(error.find("which need at least"), std::string::npos) << c.file << ": " << error;
      }
      EXPECT_NE(error.find(c.message), std::string::npos) << c.file << ": " << error;
      // The child starts with the parent's resident pages: what it adds is its peak (VmHWM) less
      // its resident size at the start, reported in MiB as its exit status.
      const pid_t child = fork();
      if (child == 0) {
        const long start = kib_of("VmRSS:");
        try {
          imdn::decode_image(bytes.data(), bytes.size(), limit);
        } catch (...) {
        }
        _exit(int(std::min<long>(250, std::max<long>(0, kib_of("VmHWM:") - start) / 1024)));
      }
      int status = 0;
      ASSERT_EQ(waitpid(child, &status, 0), child);
      ASSERT_TRUE(WIFEXITED(status)) << c.file << " crashed the decoder";
      EXPECT_LT(WEXITSTATUS(status), 64) << c.file << ": " << WEXITSTATUS(status)
                                         << " MiB more resident while refusing it";
    }
  }
}
