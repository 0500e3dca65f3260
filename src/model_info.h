// What every part of the engine speaks of a network: its architecture, hyper-parameters and
// tensors, and the one error type the library reports. A leaf: the model file (model.h), the
// architectures (architecture.h) and the checkpoint reader all build on it.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace imdn {

// Every failure the library reports: bad files, bad sizes, XNNPACK errors. The message says what
// was wrong and where, for a person to read.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Arch : uint32_t {
  kIMDN = 1,      // IMDN (Hui et al. 2019): 6 IMDB with CCA, x2/x3/x4
  kIMDN_AS = 2,   // IMDN_AS: stride-2 stem (4x down), IMDN body, x4 up; output size = input size
  kIMDN_RTC = 3,  // IMDN_RTC: 5 "speed" blocks without CCA, nf 12, x2
  kIMDN_RTE = 4,  // IMDN_RTE: stride-2 stem, 6 "large" blocks, x4 up => x2; input range [0,255]
};

inline const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::kIMDN: return "IMDN";
    case Arch::kIMDN_AS: return "IMDN_AS";
    case Arch::kIMDN_RTC: return "IMDN_RTC";
    case Arch::kIMDN_RTE: return "IMDN_RTE";
  }
  return "unknown";
}

struct Tensor {
  std::vector<uint32_t> shape;  // PyTorch order: conv weights (out, in, kh, kw), biases (out)
  std::vector<float> data;      // row-major in that order
  size_t numel() const { return data.size(); }
};

// Hyper-parameters, as recorded in the header.
struct ModelInfo {
  Arch arch = Arch::kIMDN;
  uint32_t nf = 0;                // feature channels of the body
  uint32_t blocks = 0;            // distillation blocks
  uint32_t scale = 0;             // output side / input side (1 for IMDN_AS)
  uint32_t upsample = 0;          // pixel-shuffle factor of the last layer
  float input_range = 1.f;        // the network sees RGB in [0, input_range]
  uint32_t receptive_radius = 0;  // input pixels that reach one output pixel through convolutions
  uint32_t size_multiple = 1;     // input sides must be multiples of this for one pass
};

}  // namespace imdn
