// The four IMDN architectures as data: which convolutions, in which order, with which shapes.
// Both the model loader (what tensors a file must hold) and the engine (what to build) read it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model_info.h"

namespace imdn {

enum class Act { kNone, kReLU, kLeakyReLU };  // LeakyReLU has slope 0.05 throughout IMDN

struct ConvSpec {
  std::string name;  // tensor prefix: "<name>.weight" (cout, cin, k, k), "<name>.bias" (cout)
  uint32_t cin = 0, cout = 0;
  uint32_t kernel = 3;  // square, "same" zero padding
  uint32_t stride = 1;
  bool bias = true;
  Act act = Act::kNone;  // applied after the convolution
};

// A distillation block (IMDB): step k convolves the previous step's remaining channels; its first
// `distilled` output channels are kept for the concatenation, the rest go on. The last step's whole
// output is concatenated. Then optional CCA, a 1x1 fusion conv, plus the block input.
struct BlockSpec {
  uint32_t nf = 0, distilled = 0;
  std::vector<ConvSpec> steps;  // names relative to the block: c1, c2, ...
  bool cca = false;             // contrast-aware channel attention (cca.0: cat->cat/16, cca.1: back)
  ConvSpec fuse;                // 1x1, cat_channels -> nf
  uint32_t cat_channels() const;
};

struct Architecture {
  std::vector<ConvSpec> stem;  // stem.0, stem.1: input -> features ("fea"), kept for the residual
  uint32_t blocks = 0;
  BlockSpec block;      // the same shape for every block; tensors "blocks.<i>.<name>"
  bool fusion = false;  // IMDN: "fusion" 1x1 over all block outputs (+LeakyReLU), then lr
  ConvSpec lr;          // then + fea
  ConvSpec up;          // 3x3 -> 3*r*r channels, pixel shuffle by r
  uint32_t upsample = 1;
  uint32_t stem_stride() const;  // product of the stem's strides

  // Multiply-accumulates of all convolutions for an h x w input.
  uint64_t macs(size_t h, size_t w) const;
  // The same by stage (see tiled.h): the stem over an h x w input, and per body pixel a block's
  // distillation steps, its pointwise rest, and the tail.
  uint64_t macs_stem(size_t h, size_t w) const;
  uint64_t macs_block_a_per_pixel() const;
  uint64_t macs_block_b_per_pixel() const;
  uint64_t macs_tail_per_pixel() const;

  static Architecture of(const ModelInfo& info);  // throws Error for an inconsistent header
  // Every tensor with its shape, in file order.
  std::vector<std::pair<std::string, std::vector<uint32_t>>> tensors() const;
};

}  // namespace imdn
