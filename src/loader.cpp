#include "loader.h"

#include <cstring>
#include <fstream>
#include <vector>

#include "checkpoint.h"

namespace imdn {

Model load_model(const uint8_t* bytes, size_t size) {
#ifndef IMDN_NO_CHECKPOINTS  // (the threaded WebAssembly module: handed .imdn files only)
  const bool imdn = size >= 8 && std::memcmp(bytes, Model::kMagic, 8) == 0;
  if (!imdn && looks_like_checkpoint(bytes, size)) {
    // The authors' PyTorch checkpoints are models too: read them, then check the result as any
    // model file.
    const Checkpoint c = read_checkpoint(bytes, size);
    const std::vector<uint8_t> own = Model::serialize(c.info, c.tensors);
    return Model::parse(own.data(), own.size());
  }
#endif
  return Model::parse(bytes, size);
}

Model load_model_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open model file " + path);
  f.seekg(0, std::ios::end);
  const std::streamoff n = f.tellg();
  if (n < 0 || size_t(n) > Model::kMaxFileSize) throw Error("model file " + path + " is too large or unreadable");
  f.seekg(0);
  std::vector<uint8_t> bytes(static_cast<size_t>(n));
  f.read(reinterpret_cast<char*>(bytes.data()), n);
  if (!f) throw Error("cannot read model file " + path);
  try {
    return load_model(bytes.data(), bytes.size());
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

}  // namespace imdn
