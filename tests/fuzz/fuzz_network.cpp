// libFuzzer target: networks of arbitrary (consistent) hyper-parameters with random weights, run
// on tiny images of 1-4 channels with any tile size. The oracle is exact tiling: tiles must give
// what one whole-image tile gives (raw floats within 1e-4), and nothing may crash or leak.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "support.h"
#include "upscaler.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 10) return 0;
  const imdn::Arch archs[] = {imdn::Arch::kIMDN, imdn::Arch::kIMDN_AS, imdn::Arch::kIMDN_RTC, imdn::Arch::kIMDN_RTE};
  imdn::ModelInfo info = testing_support::small_info(archs[data[0] % 4]);
  // nf as each architecture allows it: IMDN's attention reduces by 16, the others split by 4.
  const bool cca = info.arch == imdn::Arch::kIMDN || info.arch == imdn::Arch::kIMDN_AS;
  info.nf = cca ? 16u * (1u + data[1] % 2u) : 4u * (2u + data[1] % 3u);
  info.blocks = 1u + data[2] % 3u;
  if (info.arch == imdn::Arch::kIMDN) info.scale = info.upsample = 2u + data[3] % 3u;
  if (info.arch == imdn::Arch::kIMDN_RTC) info.scale = info.upsample = 1u + data[3] % 4u;
  const size_t w = 1 + data[4] % 24, h = 1 + data[5] % 24, tile = 8 + data[6] % 24;
  const int channels = 1 + data[7] % 4;
  const unsigned seed = data[8] | unsigned(data[9]) << 8;
  imdn::Model model = [&] {
    try {
      return testing_support::random_model(info, seed);
    } catch (const imdn::Error&) {  // a combination the format refuses: fine, not a finding
      return imdn::Model();
    }
  }();
  if (model.parameter_count() == 0) return 0;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> rgb(w * h * 3);
  for (float& v : rgb) v = u(rng);
  try {
    imdn::Upscaler up(model, 1);
    size_t oh = 0, ow = 0, oh2 = 0, ow2 = 0;
    const std::vector<float> whole = up.run_rgb(rgb.data(), h, w, &oh, &ow, 4096);
    const std::vector<float> tiled = up.run_rgb(rgb.data(), h, w, &oh2, &ow2, tile);
    if (oh != oh2 || ow != ow2 || whole.size() != tiled.size() || whole.size() != oh * ow * 3) std::abort();
    for (size_t i = 0; i < whole.size(); ++i) {
      if (!(std::fabs(whole[i] - tiled[i]) <= 1e-4f * (1.f + std::fabs(whole[i])))) {
        std::fprintf(stderr, "tile %zu differs from the whole image at %zu: %g vs %g\n", tile, i, tiled[i], whole[i]);
        std::abort();
      }
    }
    imdn::Image img;
    img.width = w;
    img.height = h;
    img.channels = channels;
    img.data.resize(w * h * size_t(channels));
    for (float& v : img.data) v = u(rng);
    imdn::UpscaleOptions o;
    o.tile = tile;
    const imdn::Image out = up.upscale(img, o);
    if (out.channels != channels || out.data.size() != out.width * out.height * size_t(channels)) std::abort();
  } catch (const imdn::Error&) {
  }
  return 0;
}
