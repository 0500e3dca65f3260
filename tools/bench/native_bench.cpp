// imdn-bench: native speed of one model on one input size, whole image, 1 and N threads.
//
//   imdn-bench --model IMDN_x4.imdn [--size 256] [--threads 1,2] [--runs 5] [--profile 1] [--tile N]
//
// --tile N also times exact tiling (plan.h, N body pixels) against the whole image and
// prints, for tiles of 32, 64 and 128, the MACs that exact tiles and whole-network tiles (halo =
// receptive radius) execute relative to whole-image inference.
//
// Prints median milliseconds and GMAC/s (multiply-accumulates of all convolutions per second).
// For comparison, onnxruntime-node needs about 0.8 s for IMDN x4 at 256x256 on one thread here.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "architecture.h"
#include "job.h"
#include "loader.h"
#include "model.h"
#include "network.h"

int main(int argc, char** argv) {
  std::string model_path;
  size_t size = 256, runs = 5;
  bool profile = false;
  size_t tile = 0;
  std::vector<size_t> threads = {1, 2};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--model")
      model_path = v;
    else if (a == "--size")
      size = std::strtoul(v.c_str(), nullptr, 10);
    else if (a == "--profile")
      profile = v == "1";
    else if (a == "--tile")
      tile = std::strtoul(v.c_str(), nullptr, 10);
    else if (a == "--runs")
      runs = std::max<size_t>(1, std::strtoul(v.c_str(), nullptr, 10));
    else if (a == "--threads") {
      threads.clear();
      for (size_t p = 0; p < v.size();) {
        threads.push_back(std::strtoul(v.c_str() + p, nullptr, 10));
        const size_t c = v.find(',', p);
        p = c == std::string::npos ? v.size() : c + 1;
      }
    }
  }
  if (model_path.empty() || size == 0) {
    std::fputs("usage: imdn-bench --model FILE.imdn [--size 256] [--threads 1,2] [--runs 5]\n", stderr);
    return 2;
  }
  try {
    const imdn::Model model = imdn::load_model_file(model_path);
    const size_t side =
        (size + model.info().size_multiple - 1) / model.info().size_multiple * model.info().size_multiple;
    const double gmac = double(imdn::Architecture::of(model.info()).macs(side, side)) / 1e9;
    std::vector<float> in(side * side * 3);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(0.f, 1.f);
    for (float& v : in) v = u(rng);
    std::printf("%s %zux%zu: %.2f GMAC per image\n", imdn::arch_name(model.info().arch), side, side, gmac);
    // MACs of exact tiles of `tile` body pixels over this input (the plan, not a run).
    auto planned_macs = [&](imdn::Network& n, size_t tile_body) {
      imdn::Image img;
      img.width = img.height = side;
      img.channels = 3;
      img.data = in;
      imdn::JobOptions jo;
      jo.raw = true;
      jo.tile = tile_body;
      return imdn::Job(n, img, jo).macs();
    };
    if (tile) {
      // MACs of the two tiling schemes relative to whole-image inference (counted, not timed).
      const imdn::Architecture arch = imdn::Architecture::of(model.info());
      const size_t S = arch.stem_stride(), halo = model.info().receptive_radius;
      imdn::Network probe(model, 1);
      for (size_t t : {size_t(32), size_t(64), size_t(128)}) {
        const uint64_t exact_macs = planned_macs(probe, std::max<size_t>(8, t / S));
        double whole_tiles = 0;
        for (size_t y = 0; y < side; y += t)
          for (size_t x = 0; x < side; x += t) {
            const size_t y0 = y > halo ? y - halo : 0, x0 = x > halo ? x - halo : 0;
            const size_t y1 = std::min(side, y + t + halo), x1 = std::min(side, x + t + halo);
            whole_tiles += double(arch.macs(y1 - y0, x1 - x0));
          }
        std::printf("tiles of %3zu px: exact %.2fx, whole-network tiles %.2fx the whole-image MACs\n", t,
                    double(exact_macs) / (gmac * 1e9), whole_tiles / (gmac * 1e9));
      }
    }
    for (size_t t : threads) {
      imdn::Network net(model, t);
      const auto [oh, ow] = net.output_size(side, side);
      std::vector<float> out(oh * ow * 3);
      imdn::run_network(net, in.data(), side, side, out.data());  // warm-up: shapes operators, allocates
      std::vector<double> ms;
      for (size_t r = 0; r < runs; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        imdn::run_network(net, in.data(), side, side, out.data());
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
      if (profile) {
        net.set_profiling(true);
        imdn::run_network(net, in.data(), side, side, out.data());
        for (const auto& [kind, t_ms] : net.profile()) std::printf("  %-22s %8.1f ms\n", kind.c_str(), t_ms);
        net.set_profiling(false);
      }
      std::sort(ms.begin(), ms.end());
      const double med = ms[ms.size() / 2];
      std::printf("threads %zu: median %.1f ms (min %.1f, max %.1f over %zu runs), %.1f GMAC/s\n", t, med, ms.front(),
                  ms.back(), runs, gmac / (med / 1e3));
      if (tile) {
        std::vector<double> tms;
        for (size_t r = 0; r <= runs; ++r) {
          const auto t0 = std::chrono::steady_clock::now();
          imdn::run_network(net, in.data(), side, side, out.data(), tile);
          if (r)
            tms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        std::sort(tms.begin(), tms.end());
        std::printf("threads %zu, exact tiles of %zu: median %.1f ms (%.2fx the whole image's time), %.2fx its MACs\n",
                    t, tile, tms[tms.size() / 2], tms[tms.size() / 2] / med,
                    double(planned_macs(net, tile)) / (gmac * 1e9));
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "imdn-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
