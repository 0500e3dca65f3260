// The .imdn model file: a validated, in-memory copy of one network's hyper-parameters and weights.
//
//   imdn::Model model = imdn::Model::parse(bytes);   // throws imdn::Error with a precise message
//   (any model file, .imdn or .pth: imdn::load_model, loader.h)
//   const imdn::Tensor& w = model.tensor("blocks.0.c1.weight");   // (out, in, kh, kw)
//
// The byte layout is specified in models/FORMAT.md; Model::serialize writes it (the CLIs' convert).
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "model_info.h"

namespace imdn {

class Model {
 public:
  static constexpr char kMagic[8] = {'I', 'M', 'D', 'N', 'W', 'A', 'S', 'M'};
  static constexpr uint32_t kVersion = 1;
  static constexpr uint32_t kHeaderSize = 64;
  // Largest file accepted (the official models are under 4 MB).
  static constexpr size_t kMaxFileSize = size_t(256) << 20;

  // An .imdn file: validates everything (magic, version, sizes, checksum, architecture, every
  // tensor's presence and shape) and throws imdn::Error naming the first problem. Any model file
  // (.imdn, or the authors' PyTorch checkpoints): load_model (loader.h).
  static Model parse(const uint8_t* bytes, size_t size);

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

}  // namespace imdn
