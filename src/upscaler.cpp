#include "upscaler.h"

namespace imdn {

namespace {

std::function<void(size_t, size_t, const Rect&)> units_only(const std::function<void(size_t, size_t)>& f) {
  if (!f) return nullptr;
  return [f](size_t done, size_t total, const Rect&) { f(done, total); };
}

}  // namespace

Upscaler::Upscaler(const Model& model, size_t threads) : net_(model, threads) {}

std::pair<size_t, size_t> Upscaler::output_size(size_t w, size_t h, const UpscaleOptions& o) const {
  return imdn::output_size(info(), w, h, o.target_width, o.target_height);
}

Image Upscaler::upscale(const Image& input, const UpscaleOptions& options) {
  JobOptions o;
  o.tile = options.tile;
  o.target_width = options.target_width;
  o.target_height = options.target_height;
  Job job(net_, input, o);
  job.run(units_only(options.progress));
  return job.take_image();
}

std::vector<float> Upscaler::run_rgb(const float* rgb, size_t h, size_t w, size_t* oh, size_t* ow, size_t tile,
                                     const std::function<void(size_t, size_t)>& progress) {
  Image in;
  in.width = w;
  in.height = h;
  in.channels = 3;
  in.data.assign(rgb, rgb + h * w * 3);
  JobOptions o;
  o.raw = true;
  o.tile = tile;
  Job job(net_, in, o);
  job.run(units_only(progress));
  *oh = job.height();
  *ow = job.width();
  return job.take_image().data;
}

}  // namespace imdn
