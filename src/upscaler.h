// Whole images through a network: grayscale, alpha, 16-bit sources, IMDN_AS at any size and any
// output size. This is what the CLI and the WebAssembly bindings call.
//
//   imdn::Upscaler up(imdn::Model::load("IMDN_x4.imdn"), /*threads=*/0);
//   imdn::Image out = up.upscale(imdn::load_image("in.png"));
//   imdn::save_png("out.png", out);
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "image.h"
#include "model.h"
#include "network.h"
#include "tiled.h"

namespace imdn {

struct UpscaleOptions {
  // IMDN_AS only ("any scale"): the output size. The input is first resized to it with MATLAB-style
  // bicubic and quantized to 8 bits, as the authors prepared their inputs, then restored.
  // 0 x 0 (default) restores at the input size. Other models refuse a target size.
  size_t target_width = 0, target_height = 0;
  // Side of the exact tiles the network runs on, in body pixels (tiled.h); 0 = kTile (128).
  // Larger tiles spend less on halos and copies and need more memory.
  size_t tile = 0;
  // Called after each unit of work (a tile of a stage, tiled.h) with the units done and in all,
  // over every pass the image needs (alpha is a second pass). It may throw to stop the work
  // (cancellation); the exception leaves upscale() and the Upscaler stays usable.
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
  // the network; alpha, unless fully opaque, goes through it as a grey image of its own.
  Image upscale(const Image& input, const UpscaleOptions& options = {});

  // RGB floats (h*w*3, [0,1]) in, raw RGB floats out (unclamped); *oh x *ow = output size.
  // Runs as exact tiles (tiled.h) of kTile body pixels: the same result as one whole-image pass,
  // with far less memory (whole-image XNNPACK indirection buffers alone take 72 bytes per pixel
  // per 3x3 convolution natively) and a faster first run.
  // IMDN_AS with sides that are not multiples of 4 uses the authors' adaptive cropping strategy
  // (four overlapping crops whose sides are multiples of 4), or edge padding for tiny images.
  // With a sink, the output rows go to it as they are made (rgb: n pixels of row y from column
  // x0; rows may arrive from several threads at once) and the returned vector is empty: no
  // whole float output is held, for callers that keep 8-bit pixels only.
  std::vector<float> run_rgb(const float* rgb, size_t h, size_t w, size_t* oh, size_t* ow, size_t tile = 0,
                             const std::function<void(size_t, size_t)>& progress = nullptr,
                             const TiledNetwork::RowSink& sink = nullptr);

  // Refuse whole-image passes whose feature maps would exceed this many bytes (Network's default).
  void set_memory_limit(uint64_t bytes) { net_.set_memory_limit(bytes); }

 private:
  std::vector<float> run_as_any_size(const float* rgb, size_t h, size_t w, size_t tile);
  TiledNetwork& tiled(size_t tile);
  // One pass of the tiled network, reporting progress as pass `pass_` of `passes_`.
  void run_pass(size_t tile, const float* in, size_t h, size_t w, float* out,
                const TiledNetwork::RowSink& sink = nullptr);
  // Passes run_rgb makes over an h x w image.
  size_t passes_of(size_t h, size_t w) const;

  static constexpr size_t kTile = 128;

  Network net_;
  std::unique_ptr<TiledNetwork> tiled_;
  struct ProgressScope;
  std::function<void(size_t, size_t)> progress_;
  size_t pass_ = 0, passes_ = 1;
};

}  // namespace imdn
