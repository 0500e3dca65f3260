// One IMDN network built from XNNPACK operators, for whole images of any size.
//
//   imdn::Network net(imdn::load_model_file("IMDN_x4.imdn"), /*threads=*/2);
//   auto [oh, ow] = net.output_size(h, w);
//   std::vector<float> out(oh * ow * 3);
//   imdn::run_network(net, rgb_hwc, h, w, out.data());   // job.h: RGB in [0,1] in, raw RGB out
//
// Operators are created once, on the first stage that runs (a network that only plans jobs never
// builds them), and reshaped when the input size changes.
// Feature maps are NHWC float32. The channel split and concatenation inside a block cost no copies:
// each distillation step is two convolutions over the same input, one writing its "distilled"
// channels straight into their slice of the concatenation buffer (output channel stride), the other
// writing the "remaining" channels that the next step reads. IMDN's 1x1 fusion over all six block
// outputs is accumulated block by block, so the six outputs are never held at once.
#pragma once

#include <pthreadpool.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "architecture.h"
#include "buffer.h"
#include "model.h"
#include "ops.h"

namespace imdn {

// How stride-1 convolutions are computed: by XNNPACK, or by our kernels (winograd.h): Winograd
// F(4x4, 3x3) for 3x3 ones, 4x fewer multiplies, and 1x1 ones that add in place. Ours are the
// default in WebAssembly (without fused multiply-add, fewer multiplies is what is left), XNNPACK
// natively, where its AVX-512/FMA kernels beat our portable ones; $IMDN_CONV=winograd|direct
// overrides it natively.
enum class Convolutions { kDirect, kWinograd, kDefault };

class Network {
 public:
  // threads: 0 = one per core (native), 1 = the calling thread only.
  explicit Network(const Model& model, size_t threads = 1, Convolutions convolutions = Convolutions::kDefault);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  const ModelInfo& info() const;

  // Output height and width for an input of h x w (h*scale x w*scale).
  std::pair<size_t, size_t> output_size(size_t h, size_t w) const;

  // Jobs (plan.h) refuse inputs whose feature maps would exceed this many bytes, with an
  // imdn::Error rather than an allocation failure. Default: 8 GiB natively, 3 GiB in 32-bit
  // WebAssembly.
  void set_memory_limit(uint64_t bytes);
  uint64_t memory_limit() const;

  // ---- Stages of block-at-a-time execution, what the units of a plan run (plan.h). Maps are
  // ---- NHWC float32 at body resolution (the input divided by the stem's stride).

  // The stem: an ih x iw RGB crop in [0,1] -> its body-resolution features (nf channels).
  void stage_stem(const float* rgb, size_t ih, size_t iw, float* fea);
  // Block b's distillation steps over an h x w crop of its input x (nf channels) -> the crop's
  // concatenation (cat_channels), before attention.
  void stage_block_a(size_t block, const float* x, size_t h, size_t w, float* cat);
  // The attention weights of block b from per-channel sums of its concatenation over the whole
  // image (empty for models without attention).
  std::vector<float> stage_attention(size_t block, const ops::ChannelSums& sums) const;
  // Block b's pointwise rest over `pixels` pixels: cat *= z, x += fuse(cat), acc += fusion_b(x).
  // z: null for models without attention; acc: null unless has_fusion().
  void stage_block_b(size_t block, const float* z, float* cat, float* x, float* acc, size_t pixels);
  // Block b's steps streamed down a strip of h x w body pixels (h: the whole body), `band` rows at
  // a time (a multiple of winograd_tile()), through rings of rows instead of whole crops:
  // read(y0, y1, dst) fills the block input x's rows [y0, y1) (w x nf floats each); emit(y0, y1,
  // cat, x) gets the concatenation's rows [y0, y1), before attention, and x's rows of the same
  // range, contiguous, in order (both the caller's to change: the stream is done with them). Their
  // values are stage_block_a's over any crop that holds them exactly. Needs can_stream(): every
  // step a Winograd convolution. stream_bytes: the rings, for a strip w wide.
  using ReadRows = std::function<void(size_t y0, size_t y1, float* x)>;
  using EmitRows = std::function<void(size_t y0, size_t y1, float* cat, float* x)>;
  bool can_stream() const;
  uint64_t stream_bytes(size_t w, size_t band) const;
  void stream_block(size_t block, size_t h, size_t w, size_t band, const ReadRows& read, const EmitRows& emit);
  // The tail over an h x w crop: src is acc (has_fusion()) or the last block's output, modified;
  // writes the top-left oh x ow of the h*upsample x w*upsample RGB output.
  void stage_tail(float* src, const float* fea, size_t h, size_t w, float* out, size_t oh, size_t ow);

  const Architecture& architecture() const;
  size_t blocks() const;
  size_t features() const;      // nf
  size_t cat_channels() const;  // channels of a block's concatenation
  bool has_attention() const;
  bool has_fusion() const;
  size_t stem_stride() const;
  size_t upsample() const;
  // The output tile side of the Winograd convolutions (winograd.h: 4, F(4x4, 3x3)), or 0 for
  // direct ones: how far a 3x3 convolution's outputs depend on its inputs in floating point, and
  // the grid its tiles fall on (geometry.h: halos and alignment).
  size_t winograd_tile() const;
  // The thread pool the operators share (null: the calling thread only).
  pthreadpool_t pool() const;

  // Per-operation wall time, summed over runs while enabled (for tools/ benchmarks): pairs of
  // (operation kind, milliseconds), e.g. ("conv3x3 64->64", 812.5).
  void set_profiling(bool on);
  // f(), its wall time added to `kind` while profiling (job.cpp, stream.cpp: the plan's own work between operations).
  void timed(const std::string& kind, const std::function<void()>& f);
  std::vector<std::pair<std::string, double>> profile() const;

  // The scratch its units reuse (buffer.h): one thread at a time runs a network's units.
  Workspace& workspace() { return workspace_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Workspace workspace_;
};

}  // namespace imdn
