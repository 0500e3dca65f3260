// Whole images through a network: grayscale, alpha, 16-bit sources, IMDN_AS at any size and any
// output size. This is what the CLI calls; the WebAssembly bindings run the same Job (plan.h).
//
//   imdn::Upscaler up(imdn::load_model_file("IMDN_x4.imdn"), /*threads=*/0);
//   imdn::Image out = up.upscale(imdn::load_image("in.png"));
//   imdn::save_png("out.png", out);
#pragma once

#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

#include "image.h"
#include "job.h"
#include "model.h"
#include "network.h"

namespace imdn {

struct UpscaleOptions {
  // IMDN_AS only ("any scale"): the output size. The input is first resized to it with MATLAB-style
  // bicubic and quantized to 8 bits, as the authors prepared their inputs, then restored.
  // 0 x 0 (default) restores at the input size. Other models refuse a target size.
  size_t target_width = 0, target_height = 0;
  // Side of the exact tiles the network runs on, in body pixels (plan.h); 0 = kDefaultTile (128).
  // Larger tiles spend less on halos and copies and need more memory; the output is the same.
  size_t tile = 0;
  // Called after each unit of work (plan.h) with the units done and in all, over every pass the
  // image needs (alpha is a second pass). It may throw to stop the work (cancellation); the
  // exception leaves upscale() and the Upscaler stays usable.
  std::function<void(size_t done, size_t total)> progress;
};

class Upscaler {
 public:
  // threads: 0 = one per core, 1 = the calling thread only.
  explicit Upscaler(const Model& model, size_t threads = 1);

  const ModelInfo& info() const { return net_.info(); }
  Network& network() { return net_; }

  // Output width and height for an input of w x h with these options; throws imdn::Error for sizes
  // that cannot be made.
  std::pair<size_t, size_t> output_size(size_t w, size_t h, const UpscaleOptions& options = {}) const;

  // Any image (1-4 channels) in, the upscaled image with the same channels out. Colour goes through
  // the network (as grey when R = G = B everywhere); alpha, unless fully opaque, goes through it as
  // a grey image of its own. Colour values are the network's, unclamped; alpha is clamped.
  Image upscale(const Image& input, const UpscaleOptions& options = {});

  // RGB floats (h*w*3, [0,1]) in, raw RGB floats out (unclamped); *oh x *ow = output size.
  // IMDN_AS with sides that are not multiples of 4 uses the authors' adaptive cropping strategy
  // (four overlapping crops whose sides are multiples of 4), or edge padding for tiny images.
  std::vector<float> run_rgb(const float* rgb, size_t h, size_t w, size_t* oh, size_t* ow, size_t tile = 0,
                             const std::function<void(size_t, size_t)>& progress = nullptr);

  // Refuse jobs whose feature maps would exceed this many bytes (Network's default).
  void set_memory_limit(uint64_t bytes) { net_.set_memory_limit(bytes); }

 private:
  Network net_;
};

}  // namespace imdn
