// PyTorch checkpoints read directly (src/checkpoint.h): both formats, as people save them, and
// every kind of broken or hostile file refused with a message. The checkpoints are written here
// the way torch.save writes them (protocol-2 pickles; the legacy stream or a stored zip), from
// random models of each architecture, so no PyTorch and no ../shared is needed.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <random>

#include "checkpoint.h"
#include "checkpoint_writer.h"
#include "loader.h"
#include "model.h"
#include "support.h"

using namespace testing_support;
using namespace checkpoint_writer;

namespace {

const imdn::Arch kArchs[] = {imdn::Arch::kIMDN, imdn::Arch::kIMDN_AS, imdn::Arch::kIMDN_RTC, imdn::Arch::kIMDN_RTE};

}  // namespace

TEST(Checkpoint, BothFormatsOfEveryArchitectureReadExactlyAndIdentified) {
  for (auto arch : kArchs) {
    const imdn::Model original = random_model(small_info(arch), 3);
    for (bool as_zip : {false, true}) {
      SCOPED_TRACE(std::string(imdn::arch_name(arch)) + (as_zip ? " zip" : " legacy"));
      const std::vector<uint8_t> file = checkpoint(original, {as_zip});
      const imdn::Model m = imdn::load_model(file.data(), file.size());
      const imdn::ModelInfo &a = m.info(), &b = original.info();
      EXPECT_EQ(a.arch, b.arch);
      EXPECT_EQ(a.nf, b.nf);
      EXPECT_EQ(a.blocks, b.blocks);
      EXPECT_EQ(a.scale, b.scale);
      EXPECT_EQ(a.upsample, b.upsample);
      EXPECT_EQ(a.input_range, b.input_range);
      EXPECT_EQ(a.size_multiple, b.size_multiple);
      EXPECT_GT(a.receptive_radius, 0u);
      for (const auto& [name, shape] : imdn::Model::expected_tensors(b))
        EXPECT_EQ(m.tensor(name).data, original.tensor(name).data) << name;
    }
  }
}

TEST(Checkpoint, Float16DataParallelAndWrappedStateDicts) {
  const imdn::Model original = random_model(small_info(imdn::Arch::kIMDN), 5);
  for (const Options& o : {Options{false, true}, Options{true, true}, Options{false, false, "module."},
                           Options{true, false, "module.", true}}) {
    const std::vector<uint8_t> file = checkpoint(original, o);
    const imdn::Model m = imdn::load_model(file.data(), file.size());
    const auto& got = m.tensor("blocks.1.c4.weight").data;
    const auto& want = original.tensor("blocks.1.c4.weight").data;
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      const float w = o.half ? imdn::from_half(imdn::to_half(want[i])) : want[i];
      ASSERT_EQ(got[i], w) << i;
    }
  }
}

TEST(Checkpoint, Float16ModelFilesHalveTheSizeAndReadBack) {
  const imdn::Model m = random_model(small_info(imdn::Arch::kIMDN), 9);
  const std::vector<uint8_t> full = m.serialize(), half = m.serialize(true);
  EXPECT_LT(half.size(), full.size() * 7 / 10);  // small tensors and the stem stay float32
  const imdn::Model h = imdn::load_model(half.data(), half.size());
  for (const auto& [name, t] : imdn::Model::expected_tensors(m.info())) {
    const auto& a = m.tensor(name).data;
    const auto& b = h.tensor(name).data;
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(b[i], a[i], std::abs(a[i]) / 1024 + 6e-8f) << name;
  }
  for (float v : {0.f, 1.f, -2.5f, 65504.f, 1e-7f, 6.1e-5f, 0.33333334f})
    EXPECT_NEAR(imdn::from_half(imdn::to_half(v)), v, std::abs(v) / 2048 + 3e-8f);
  EXPECT_TRUE(std::isinf(imdn::from_half(imdn::to_half(1e6f))));
}

TEST(Checkpoint, RefusesCodeAnywhereWithoutRunningIt) {
  const imdn::Model m = random_model(small_info(imdn::Arch::kIMDN_RTC), 1);
  for (const char* g : {"os.system", "builtins.eval", "subprocess.Popen", "torch.load", "posix.system"}) {
    for (bool as_zip : {false, true}) {
      Options o;
      o.zip = as_zip;
      o.extra_global = g;
      const std::string e = parse_error(checkpoint(m, o));
      EXPECT_NE(e.find(std::string("names ") + g), std::string::npos) << e;
      EXPECT_NE(e.find("refusing it"), std::string::npos) << e;
    }
  }
  // In the legacy header too: a first pickle that is a __reduce__ to os.system.
  Pickle evil;
  evil.op(0x80).op(2).global("os", "system").str("touch /tmp/imdn-pwned").op(0x85).op('R').op('.');
  const std::string e = parse_error(evil.b);
  EXPECT_NE(e.find("names os.system"), std::string::npos) << e;
}

TEST(Checkpoint, RefusesEveryTruncationOfBothFormats) {
  const imdn::Model m = random_model(small_info(imdn::Arch::kIMDN_RTC), 2);
  for (bool as_zip : {false, true}) {
    const std::vector<uint8_t> file = checkpoint(m, {as_zip});
    for (size_t n = 0; n < file.size(); n += (n < 4096 ? 1 : 97)) {
      const std::vector<uint8_t> cut(file.begin(), file.begin() + long(n));
      EXPECT_FALSE(parse_error(cut).empty()) << (as_zip ? "zip" : "legacy") << " cut at " << n;
    }
  }
}

TEST(Checkpoint, RefusesLyingSizesMissingEntriesAndOtherNetworks) {
  const imdn::Model m = random_model(small_info(imdn::Arch::kIMDN_RTC), 4);
  const imdn::ModelInfo& info = m.info();
  std::vector<Entry> entries;
  for (const auto& [name, shape] : imdn::Model::expected_tensors(info))
    entries.push_back({imdn::pytorch_name(info.arch, info.blocks, name), shape, std::to_string(entries.size())});

  // A zip of these entries, each storage as large as its tensor or as its claimed size if smaller.
  auto zip_of = [](const std::vector<Entry>& e) {
    std::vector<std::pair<std::string, std::vector<uint8_t>>> files = {{"a/data.pkl", state_pickle(e, {})}};
    for (const Entry& x : e) {
      int64_t k = 1;
      for (uint32_t d : x.shape) k *= d;
      files.push_back({"a/data/" + x.key, std::vector<uint8_t>(size_t(x.numel >= 0 && x.numel < k ? x.numel : k) *
                                                               (x.dtype == "Long" ? 8 : 4))});
    }
    return zip(files);
  };
  // A storage smaller than its tensor, and one claiming an absurd size: no allocation for it.
  auto with = [&](int64_t numel) {
    std::vector<Entry> e = entries;
    e[0].numel = numel;
    return zip_of(e);
  };
  EXPECT_NE(parse_error(with(5)).find("reaches past the end of its storage"), std::string::npos)
      << parse_error(with(5));
  EXPECT_NE(parse_error(with(int64_t(1) << 60)).find("far more than any file holds"), std::string::npos)
      << parse_error(with(int64_t(1) << 60));

  // A zip without one of its storages.
  std::vector<std::pair<std::string, std::vector<uint8_t>>> files = {{"a/data.pkl", state_pickle(entries, {})}};
  EXPECT_NE(parse_error(zip(files)).find("storage 0 is missing from the file"), std::string::npos)
      << parse_error(zip(files));

  // Wrong shapes, a missing tensor, tensors of no IMDN network.
  std::vector<Entry> bad = entries;
  bad[1].shape[0] += 1;
  EXPECT_NE(parse_error(zip_of(bad)).find("has shape"), std::string::npos) << parse_error(zip_of(bad));
  bad = entries;
  bad.pop_back();
  EXPECT_NE(parse_error(zip_of(bad)).find("lacks tensor"), std::string::npos) << parse_error(zip_of(bad));
  bad = entries;
  bad.push_back({"extra.weight", {4}, "99"});
  EXPECT_NE(parse_error(zip_of(bad)).find("holds tensor extra.weight, which IMDN_RTC"), std::string::npos)
      << parse_error(zip_of(bad));
  bad = {{"encoder.weight", {8, 3, 3, 3}, "0"}};
  EXPECT_NE(parse_error(zip_of(bad)).find("is not one of IMDN"), std::string::npos) << parse_error(zip_of(bad));
  bad = entries;
  bad[2].dtype = "Long";
  EXPECT_NE(parse_error(zip_of(bad)).find("not floating point"), std::string::npos) << parse_error(zip_of(bad));
}

TEST(Checkpoint, DeepNestingAndHugeLengthsAreRefusedQuickly) {
  Pickle deep;
  deep.op(0x80).op(2);
  for (int i = 0; i < 200000; ++i) deep.op(']');
  for (int i = 0; i < 199999; ++i) deep.op('a');
  deep.op('.');
  const std::vector<uint8_t> deep_zip = zip({{"a/data.pkl", deep.b}});
  EXPECT_NE(parse_error(deep_zip).find("holds a list, not a state dict"), std::string::npos) << parse_error(deep_zip);

  Pickle many;  // a million marks and values: bounded
  many.op(0x80).op(2);
  for (int i = 0; i < 1100000; ++i) many.op('N');
  EXPECT_NE(parse_error(many.b).find("too many values"), std::string::npos) << parse_error(many.b);

  Pickle huge;  // a string claiming 4 GB
  huge.op(0x80).op(2).op('X').u(0xFFFFFFFF, 4).op('.');
  EXPECT_NE(parse_error(huge.b).find("truncated"), std::string::npos) << parse_error(huge.b);
}

TEST(Checkpoint, GarbageIsRefusedWithAMessage) {
  std::mt19937 rng(11);
  for (int round = 0; round < 2000; ++round) {
    std::vector<uint8_t> b(size_t(rng() % 300));
    for (auto& x : b) x = uint8_t(rng());
    if (round % 3 == 0 && b.size() > 4) {
      b[0] = 'P';
      b[1] = 'K';
      b[2] = 3;
      b[3] = 4;
    }
    if (round % 3 == 1 && b.size() > 1) b[0] = 0x80;
    EXPECT_FALSE(parse_error(b).empty());
  }
  EXPECT_NE(parse_error({'h', 'e', 'l', 'l', 'o'}).find("neither an .imdn file"), std::string::npos);
}

TEST(Checkpoint, OfficialCheckpointsAreIdentifiedFromTheirTensors) {
  struct Want {
    const char* file;
    imdn::Arch arch;
    uint32_t nf, blocks, scale, upsample, radius;
  };
  for (const Want& w : {Want{"IMDN_x2.pth", imdn::Arch::kIMDN, 64, 6, 2, 2, 27},
                        Want{"IMDN_x4.pth", imdn::Arch::kIMDN, 64, 6, 4, 4, 27},
                        Want{"IMDN_AS.pth", imdn::Arch::kIMDN_AS, 64, 6, 1, 4, 110},
                        Want{"model_RTC.pth", imdn::Arch::kIMDN_RTC, 12, 5, 2, 2, 22},
                        Want{"model_RTE.pth", imdn::Arch::kIMDN_RTE, 20, 6, 2, 4, 77}}) {
    const std::string path = imdn_dir() + "/checkpoints/" + w.file;
    REQUIRE_FILE(path);
    // Renamed: nothing is read from the file name.
    std::vector<uint8_t> bytes;
    {
      std::ifstream f(path, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(f), {});
    }
    const imdn::Model m = imdn::load_model(bytes.data(), bytes.size());
    const imdn::ModelInfo& i = m.info();
    EXPECT_EQ(i.arch, w.arch) << w.file;
    EXPECT_EQ(i.nf, w.nf) << w.file;
    EXPECT_EQ(i.blocks, w.blocks) << w.file;
    EXPECT_EQ(i.scale, w.scale) << w.file;
    EXPECT_EQ(i.upsample, w.upsample) << w.file;
    EXPECT_EQ(i.receptive_radius, w.radius) << w.file;
    EXPECT_EQ(i.input_range, w.arch == imdn::Arch::kIMDN_RTE ? 255.f : 1.f) << w.file;
  }
}
