// Parity with the authors' code: raw floats against their .npy outputs, uint8 images against their
// PNGs, and the paper's Set5 numbers, for the official checkpoints converted from ../shared.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "image.h"
#include "metrics.h"
#include "network.h"
#include "resize.h"
#include "support.h"
#include "upscaler.h"

using namespace testing_support;

namespace {

const char* kSet5[] = {"baby", "bird", "butterfly", "head", "woman"};

std::string model_path(const std::string& name) { return models_dir() + "/" + name + ".imdn"; }

struct Official {
  const char* name;
  imdn::Arch arch;
  uint32_t nf, blocks, scale;
  float range;
  size_t params;
};

const Official kOfficial[] = {
    {"IMDN_x2", imdn::Arch::kIMDN, 64, 6, 2, 1.f, 694404},
    {"IMDN_x3", imdn::Arch::kIMDN, 64, 6, 3, 1.f, 703059},
    {"IMDN_x4", imdn::Arch::kIMDN, 64, 6, 4, 1.f, 715176},
    {"IMDN_AS", imdn::Arch::kIMDN_AS, 64, 6, 1, 1.f, 752104},
    {"IMDN_RTC", imdn::Arch::kIMDN_RTC, 12, 5, 2, 1.f, 20190},
    {"IMDN_RTE", imdn::Arch::kIMDN_RTE, 20, 6, 2, 255.f, 89748},
};

TEST(Converter, AllSixOfficialCheckpoints) {
  REQUIRE_FILE(imdn_dir() + "/checkpoints/IMDN_x4.pth");
  for (const Official& o : kOfficial) {
    SCOPED_TRACE(o.name);
    const imdn::Model m = imdn::load_model_file(model_path(o.name));
    EXPECT_EQ(m.info().arch, o.arch);
    EXPECT_EQ(m.info().nf, o.nf);
    EXPECT_EQ(m.info().blocks, o.blocks);
    EXPECT_EQ(m.info().scale, o.scale);
    EXPECT_EQ(m.info().input_range, o.range);
    EXPECT_EQ(m.parameter_count(), o.params);
  }
}

struct RawCase {
  const char* model;   // converted model
  const char* prefix;  // reference file prefix
  const char* image;
};

void PrintTo(const RawCase& c, std::ostream* os) { *os << std::string(c.model) + " " + c.image; }

class RawParity : public ::testing::TestWithParam<RawCase> {};

TEST_P(RawParity, WithinOneTenThousandth) {
  const RawCase c = GetParam();
  const std::string in_path = imdn_dir() + "/reference/" + c.prefix + "_" + c.image + "_input_f32.npy";
  REQUIRE_FILE(in_path);
  const Npy in = read_npy(in_path);
  const Npy want = read_npy(imdn_dir() + "/reference/" + c.prefix + "_" + c.image + "_output_f32.npy");
  const size_t h = in.shape[2], w = in.shape[3];
  for (size_t threads : {size_t(1), size_t(2)}) {
    imdn::Network net(imdn::load_model_file(model_path(c.model)), threads);
    const auto [oh, ow] = net.output_size(h, w);
    ASSERT_EQ(oh, want.shape[2]);
    ASSERT_EQ(ow, want.shape[3]);
    std::vector<float> out(oh * ow * 3);
    imdn::run_network(net, nchw_to_hwc(in).data(), h, w, out.data());
    const std::vector<float> ref = nchw_to_hwc(want);
    double max_diff = 0;
    for (size_t i = 0; i < out.size(); ++i) max_diff = std::max(max_diff, std::fabs(double(out[i]) - ref[i]));
    RecordProperty("max_abs_diff", std::to_string(max_diff));
    std::printf("[ raw      ] %s %s threads %zu: max |diff| %.3g\n", c.model, c.image, threads, max_diff);
    EXPECT_LE(max_diff, 1e-4);
  }
  // WebAssembly's convolutions (Winograd F(4x4), our 1x1 kernel) against XNNPACK's direct ones.
  std::vector<float> outs[2];
  for (int k = 0; k < 2; ++k) {
    imdn::Network net(imdn::load_model_file(model_path(c.model)), 1,
                      k ? imdn::Convolutions::kWinograd : imdn::Convolutions::kDirect);
    const auto [oh, ow] = net.output_size(h, w);
    outs[k].resize(oh * ow * 3);
    imdn::run_network(net, nchw_to_hwc(in).data(), h, w, outs[k].data());
  }
  double max_diff = 0;
  for (size_t i = 0; i < outs[0].size(); ++i) max_diff = std::max(max_diff, std::fabs(double(outs[1][i]) - outs[0][i]));
  std::printf("[ winograd ] %s %s: max |ours - direct| %.3g\n", c.model, c.image, max_diff);
  EXPECT_LE(max_diff, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(
    Official, RawParity,
    ::testing::Values(RawCase{"IMDN_x2", "IMDN_x2", "bird"}, RawCase{"IMDN_x2", "IMDN_x2", "butterfly"},
                      RawCase{"IMDN_x3", "IMDN_x3", "bird"}, RawCase{"IMDN_x3", "IMDN_x3", "butterfly"},
                      RawCase{"IMDN_x4", "IMDN_x4", "bird"}, RawCase{"IMDN_x4", "IMDN_x4", "butterfly"},
                      RawCase{"IMDN_RTC", "IMDN_RTC_x2", "bird"}, RawCase{"IMDN_RTC", "IMDN_RTC_x2", "butterfly"}),
    [](const ::testing::TestParamInfo<RawCase>& i) { return std::string(i.param.model) + "_" + i.param.image; });

struct Set5Case {
  const char* model;
  const char* lr_dir;  // Set5_LR subfolder, or "" for IMDN_AS's reference inputs
  const char* ref;     // reference PNG prefix
  int scale;           // shave and LR suffix
  double psnr, ssim;   // measured with the official code (0: not checked)
};

void PrintTo(const Set5Case& c, std::ostream* os) { *os << std::string(c.ref); }

class Set5 : public ::testing::TestWithParam<Set5Case> {};

// Each model over all of Set5: the uint8 output equals the authors' PNG but for rare one-level
// rounding differences, and the mean Y-PSNR / SSIM is the paper's.
TEST_P(Set5, MatchesReferenceImagesAndPaperNumbers) {
  const Set5Case c = GetParam();
  REQUIRE_FILE(imdn_dir() + "/datasets/Set5_HR/baby.bmp");
  imdn::Upscaler up(imdn::load_model_file(model_path(c.model)), 0);
  double psnr = 0, ssim = 0;
  size_t values = 0, off_by_one = 0;
  int worst = 0;
  for (const char* name : kSet5) {
    const std::string s = std::to_string(c.scale);
    const std::string in_path = std::string(c.lr_dir).empty()
                                    ? imdn_dir() + "/reference/" + c.ref + "_" + name + "_input.png"
                                    : imdn_dir() + "/datasets/Set5_LR/" + c.lr_dir + "/" + name + "x" + s + ".bmp";
    const imdn::Image out = up.upscale(imdn::load_image(in_path));
    const imdn::Image ref = imdn::load_image(imdn_dir() + "/reference/" + c.ref + "_" + name + "_SR.png");
    ASSERT_EQ(out.width, ref.width) << name;
    ASSERT_EQ(out.height, ref.height) << name;
    ASSERT_EQ(out.channels, 3);
    ASSERT_EQ(ref.channels, 3);
    for (size_t i = 0; i < out.data.size(); ++i) {
      const int d = std::abs(int(imdn::to_u8(out.data[i])) - int(imdn::to_u8(ref.data[i])));
      worst = std::max(worst, d);
      off_by_one += d != 0;
    }
    values += out.data.size();
    if (c.psnr > 0) {
      const imdn::Quality q =
          imdn::compare_y(out, imdn::load_image(imdn_dir() + "/datasets/Set5_HR/" + name + ".bmp"), size_t(c.scale));
      psnr += q.psnr;
      ssim += q.ssim;
    }
  }
  psnr /= 5;
  ssim /= 5;
  std::printf("[ set5     ] %s: %zu of %zu values off by one, worst %d", c.ref, off_by_one, values, worst);
  if (c.psnr > 0) std::printf("; Y-PSNR %.4f SSIM %.5f", psnr, ssim);
  std::printf("\n");
  EXPECT_LE(worst, 1);
  EXPECT_LE(double(off_by_one), 1e-3 * double(values));
  if (c.psnr > 0) {
    EXPECT_NEAR(psnr, c.psnr, 0.005);
    EXPECT_NEAR(ssim, c.ssim, 0.0005);
  }
}

INSTANTIATE_TEST_SUITE_P(Official, Set5,
                         ::testing::Values(Set5Case{"IMDN_x2", "x2", "IMDN_x2", 2, 37.996, 0.9605},
                                           Set5Case{"IMDN_x3", "x3", "IMDN_x3", 3, 34.360, 0.9270},
                                           Set5Case{"IMDN_x4", "x4", "IMDN_x4", 4, 32.210, 0.8948},
                                           Set5Case{"IMDN_RTC", "x2", "IMDN_RTC_x2", 2, 37.311, 0.9583},
                                           Set5Case{"IMDN_RTE", "x2", "IMDN_RTE_x2_in255", 2, 35.410, 0.9380},
                                           Set5Case{"IMDN_AS", "", "IMDN_AS_bicx2", 2, 0, 0},
                                           Set5Case{"IMDN_AS", "", "IMDN_AS_bicx3", 3, 0, 0},
                                           Set5Case{"IMDN_AS", "", "IMDN_AS_bicx4", 4, 0, 0}),
                         [](const ::testing::TestParamInfo<Set5Case>& i) { return std::string(i.param.ref); });

// IMDN_AS's "any scale" resize reproduces the inputs behind the reference outputs.
TEST(Resize, MatchesMatlabBicubicInputs) {
  REQUIRE_FILE(imdn_dir() + "/reference/IMDN_AS_bicx3_bird_input.png");
  for (int s : {2, 3, 4}) {
    for (const char* name : kSet5) {
      const imdn::Image lr = imdn::load_image(imdn_dir() + "/datasets/Set5_LR/x" + std::to_string(s) + "/" + name +
                                              "x" + std::to_string(s) + ".bmp");
      const imdn::Image want =
          imdn::load_image(imdn_dir() + "/reference/IMDN_AS_bicx" + std::to_string(s) + "_" + name + "_input.png");
      const std::vector<float> got =
          imdn::resize_bicubic(lr.data.data(), lr.height, lr.width, 3, want.height, want.width);
      int worst = 0;
      size_t diff = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        const int d = std::abs(int(imdn::to_u8(got[i])) - int(imdn::to_u8(want.data[i])));
        worst = std::max(worst, d);
        diff += d != 0;
      }
      EXPECT_LE(worst, 1) << name << " x" << s;
      EXPECT_LE(double(diff), 1e-3 * double(got.size())) << name << " x" << s;
    }
  }
}

}  // namespace
