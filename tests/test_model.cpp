// The model loader refuses every kind of bad file with a message that says what is wrong.
#include <gtest/gtest.h>

#include <cstring>

#include "architecture.h"
#include "bytes.h"
#include "loader.h"
#include "model.h"
#include "support.h"

using namespace testing_support;

namespace {

void fix_crc(std::vector<uint8_t>* b) {
  const uint32_t c = imdn::crc32(b->data(), b->size() - 4);
  std::memcpy(b->data() + b->size() - 4, &c, 4);
}

std::vector<uint8_t> good() { return random_model_bytes(small_info(imdn::Arch::kIMDN_RTC), 1); }

}  // namespace

TEST(Model, RoundTripsEveryArchitecture) {
  for (auto arch : {imdn::Arch::kIMDN, imdn::Arch::kIMDN_AS, imdn::Arch::kIMDN_RTC, imdn::Arch::kIMDN_RTE}) {
    const imdn::ModelInfo info = small_info(arch);
    const imdn::Model m = random_model(info, 7);
    EXPECT_EQ(m.info().arch, arch);
    EXPECT_EQ(m.info().nf, info.nf);
    EXPECT_EQ(m.info().input_range, info.input_range);
    EXPECT_EQ(m.info().size_multiple, info.size_multiple);
  }
}

TEST(Model, RejectsWrongMagic) {
  auto b = good();
  b[0] = 'X';
  EXPECT_NE(parse_error(b).find("wrong magic"), std::string::npos) << parse_error(b);
  const std::string png = "\x89PNG\r\n\x1a\n and more bytes than a header needs......................................";
  EXPECT_NE(parse_error(std::vector<uint8_t>(png.begin(), png.end())).find("not a model: neither an .imdn file"),
            std::string::npos);
}

TEST(Model, RejectsOtherVersions) {
  auto b = good();
  b[8] = 2;
  fix_crc(&b);
  EXPECT_NE(parse_error(b).find("unsupported model file version 2"), std::string::npos) << parse_error(b);
}

TEST(Model, RejectsEveryTruncation) {
  const auto b = good();
  for (size_t n :
       {size_t(0), size_t(10), size_t(63), size_t(64), size_t(67), size_t(100), b.size() / 2, b.size() - 1}) {
    std::vector<uint8_t> t(b.begin(), b.begin() + n);
    const std::string e = parse_error(t);
    EXPECT_FALSE(e.empty()) << "accepted a file cut to " << n << " bytes";
    EXPECT_TRUE(e.find("truncated") != std::string::npos || e.find("shorter than") != std::string::npos)
        << n << ": " << e;
  }
}

TEST(Model, RejectsChecksumMismatch) {
  auto b = good();
  b[b.size() / 2] ^= 0x40;  // a bit flip inside a weight
  EXPECT_NE(parse_error(b).find("checksum"), std::string::npos) << parse_error(b);
}

TEST(Model, RejectsUnknownArchitecture) {
  auto b = good();
  b[16] = 9;
  fix_crc(&b);
  EXPECT_NE(parse_error(b).find("unknown architecture id 9"), std::string::npos) << parse_error(b);
}

TEST(Model, RejectsInconsistentHyperParameters) {
  auto b = good();
  b[28] = 3;  // scale 3 with upsample 2
  fix_crc(&b);
  EXPECT_NE(parse_error(b).find("inconsistent"), std::string::npos) << parse_error(b);
}

TEST(Model, RejectsTensorCountMismatch) {
  auto b = good();
  b[48] += 1;
  fix_crc(&b);
  EXPECT_NE(parse_error(b).find("tensors; IMDN_RTC with these hyper-parameters needs"), std::string::npos)
      << parse_error(b);
}

TEST(Model, RejectsShapeMismatchAndMissingAndUnknownTensors) {
  const imdn::ModelInfo info = small_info(imdn::Arch::kIMDN_RTC);
  std::map<std::string, imdn::Tensor> t;
  for (const auto& [name, shape] : imdn::Model::expected_tensors(info)) {
    t[name].shape = shape;
    size_t n = 1;
    for (uint32_t d : shape) n *= d;
    t[name].data.assign(n, 0.01f);
  }
  auto shape_bad = t;
  shape_bad["lr.weight"].shape = {12, 12, 3, 3};
  shape_bad["lr.weight"].data.assign(12 * 12 * 9, 0.f);
  std::string e = parse_error(imdn::Model::serialize(info, shape_bad));
  EXPECT_NE(e.find("tensor lr.weight has shape (12, 12, 3, 3), IMDN_RTC needs (12, 12, 1, 1)"), std::string::npos) << e;

  auto renamed = t;
  renamed["lr.weights"] = renamed["lr.weight"];
  renamed.erase("lr.weight");
  e = parse_error(imdn::Model::serialize(info, renamed));
  EXPECT_NE(e.find("unexpected tensor lr.weights"), std::string::npos) << e;

  auto nan = t;
  nan["up.bias"].data[1] = NAN;
  e = parse_error(imdn::Model::serialize(info, nan));
  EXPECT_NE(e.find("up.bias holds NaN"), std::string::npos) << e;
}

TEST(Model, RejectsWrongModelForScale) {
  // An x2 IMDN checkpoint relabelled as x4 has an upsampler of the wrong size.
  imdn::ModelInfo info = small_info(imdn::Arch::kIMDN);
  info.scale = info.upsample = 2;
  const auto bytes = random_model_bytes(info, 3);
  auto relabelled = bytes;
  relabelled[28] = 4;
  relabelled[32] = 4;
  fix_crc(&relabelled);
  const std::string e = parse_error(relabelled);
  // Whichever of the upsampler's tensors is read first is the one named.
  EXPECT_TRUE(e.find("tensor up.weight has shape (12, 16, 3, 3), IMDN needs (48, 16, 3, 3)") != std::string::npos ||
              e.find("tensor up.bias has shape (12), IMDN needs (48)") != std::string::npos)
      << e;
}

TEST(Model, LoadNamesTheFile) {
  try {
    imdn::load_model_file("/nonexistent/x.imdn");
    FAIL();
  } catch (const imdn::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.imdn"), std::string::npos);
  }
}

TEST(Model, RandomBitFlipsNeverCrash) {
  const auto b = good();
  std::mt19937 rng(5);
  for (int i = 0; i < 300; ++i) {
    auto c = b;
    const size_t pos = rng() % c.size();
    c[pos] ^= uint8_t(1u << (rng() % 8));
    if (i % 2) fix_crc(&c);  // also past the checksum: the structural checks must hold alone
    try {
      imdn::load_model(c.data(), c.size());
    } catch (const imdn::Error&) {
    }
  }
}
