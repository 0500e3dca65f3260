// The .imdn model file: a validated, in-memory copy of one network's hyper-parameters and weights.
//
//   imdn::Model model = imdn::Model::parse(bytes);   // throws imdn::Error with a precise message
//   const imdn::Tensor& w = model.tensor("blocks.0.c1.weight");   // (out, in, kh, kw)
//
// The byte layout is specified in models/FORMAT.md; Model::serialize writes it (the CLIs' convert).
#pragma once

#include <cstdint>
#include <map>
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

const char* arch_name(Arch arch);

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

class Model {
 public:
  static constexpr char kMagic[8] = {'I', 'M', 'D', 'N', 'W', 'A', 'S', 'M'};
  static constexpr uint32_t kVersion = 1;
  static constexpr uint32_t kHeaderSize = 64;
  // Largest file accepted (the official models are under 4 MB).
  static constexpr size_t kMaxFileSize = size_t(256) << 20;

  // Validates everything (magic, version, sizes, checksum, architecture, every tensor's presence
  // and shape) and throws imdn::Error naming the first problem. The authors' PyTorch checkpoints
  // (.pth, either format) are read too, recognised by their content (src/checkpoint.h).
  static Model parse(const uint8_t* bytes, size_t size);
  static Model load(const std::string& path);

  const ModelInfo& info() const { return info_; }
  const Tensor& tensor(const std::string& name) const;
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  size_t parameter_count() const;

  // The tensors an architecture needs, with their shapes (also used by tests to build models).
  static std::vector<std::pair<std::string, std::vector<uint32_t>>> expected_tensors(const ModelInfo& info);
  // Writes a model file; f16: values stored as float16 (half the size; read back as float32).
  static std::vector<uint8_t> serialize(const ModelInfo& info, const std::map<std::string, Tensor>& tensors,
                                        bool f16 = false);
  // This model as a file again.
  std::vector<uint8_t> serialize(bool f16 = false) const { return serialize(info_, tensors_, f16); }

 private:
  ModelInfo info_;
  std::map<std::string, Tensor> tensors_;
};

uint32_t crc32(const uint8_t* data, size_t size);
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);

}  // namespace imdn
