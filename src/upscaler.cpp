#include "upscaler.h"

namespace imdn {

Upscaler::Upscaler(const Model& model, size_t threads) : net_(model, threads) {}

std::pair<size_t, size_t> Upscaler::output_size(size_t w, size_t h, const UpscaleOptions& o) const {
  return imdn::output_size(info(), w, h, o.target_width, o.target_height);
}

Image Upscaler::upscale(const Image& input, const UpscaleOptions& options) {
  JobOptions o;
  o.tile = options.tile;
  o.target_width = options.target_width;
  o.target_height = options.target_height;
  o.executor = Executor::kInstance;  // (Job::run below: its blocks may stream)
  Job job(net_, input, o);
  std::function<void(size_t, size_t, const Rect&)> units;
  if (options.progress) units = [&](size_t done, size_t total, const Rect&) { options.progress(done, total); };
  job.run(units);
  return job.take_image();
}

std::vector<float> Upscaler::run_rgb(const float* rgb, size_t h, size_t w, size_t* oh, size_t* ow, size_t tile,
                                     const std::function<void(size_t, size_t)>& progress) {
  return run_raw(net_, rgb, h, w, tile, progress, oh, ow);
}

}  // namespace imdn
