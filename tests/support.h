// Shared helpers for the native tests: where ../shared and the converted models are, .npy
// reading, and random models of any architecture.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "loader.h"
#include "model.h"

namespace testing_support {

inline bool exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

// ../shared beside the checkout, or $IMDN_SHARED_DIR.
inline std::string shared_dir() {
  const char* env = std::getenv("IMDN_SHARED_DIR");
  return env ? env : IMDN_DEFAULT_SHARED_DIR;
}
inline std::string imdn_dir() { return shared_dir() + "/imdn"; }
// Models converted from ../shared's checkpoints by the CTest fixture (or $IMDN_MODELS_DIR).
inline std::string models_dir() {
  const char* env = std::getenv("IMDN_MODELS_DIR");
  return env ? env : IMDN_DEFAULT_MODELS_DIR;
}

#define REQUIRE_FILE(path)                                                         \
  do {                                                                             \
    if (!testing_support::exists(path)) GTEST_SKIP() << "not present: " << (path); \
  } while (0)

struct Npy {
  std::vector<size_t> shape;
  std::vector<float> data;
};

inline Npy read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw imdn::Error("cannot open " + path);
  char magic[8];
  f.read(magic, 8);
  if (std::string(magic, 6) != "\x93NUMPY") throw imdn::Error(path + ": not .npy");
  uint32_t hlen = 0;
  if (magic[6] == 1) {
    uint16_t h16;
    f.read(reinterpret_cast<char*>(&h16), 2);
    hlen = h16;
  } else {
    f.read(reinterpret_cast<char*>(&hlen), 4);
  }
  std::string header(hlen, '\0');
  f.read(&header[0], hlen);
  if (header.find("'<f4'") == std::string::npos || header.find("'fortran_order': False") == std::string::npos) {
    throw imdn::Error(path + ": expected C-order float32");
  }
  Npy n;
  const size_t a = header.find('(', header.find("shape")), b = header.find(')', a);
  std::string dims = header.substr(a + 1, b - a - 1);
  size_t count = 1;
  for (size_t p = 0; p < dims.size();) {
    while (p < dims.size() && (dims[p] == ' ' || dims[p] == ',')) ++p;
    if (p >= dims.size()) break;
    size_t q = p;
    while (q < dims.size() && isdigit(static_cast<unsigned char>(dims[q]))) ++q;
    n.shape.push_back(std::stoul(dims.substr(p, q - p)));
    count *= n.shape.back();
    p = q;
  }
  n.data.resize(count);
  f.read(reinterpret_cast<char*>(n.data.data()), std::streamsize(count * 4));
  if (!f) throw imdn::Error(path + ": truncated");
  return n;
}

// NCHW (1, 3, H, W) -> HWC
inline std::vector<float> nchw_to_hwc(const Npy& n) {
  const size_t h = n.shape[2], w = n.shape[3];
  std::vector<float> out(h * w * 3);
  for (size_t c = 0; c < 3; ++c)
    for (size_t i = 0; i < h * w; ++i) out[i * 3 + c] = n.data[c * h * w + i];
  return out;
}

// The message load_model refuses these bytes with, or "" if it accepts them.
inline std::string parse_error(const std::vector<uint8_t>& b) {
  try {
    imdn::load_model(b.data(), b.size());
  } catch (const imdn::Error& e) {
    return e.what();
  }
  return "";
}

inline imdn::ModelInfo small_info(imdn::Arch arch) {
  imdn::ModelInfo i;
  i.arch = arch;
  switch (arch) {
    case imdn::Arch::kIMDN:
      i.nf = 16;
      i.blocks = 2;
      i.scale = 3;
      i.upsample = 3;
      break;
    case imdn::Arch::kIMDN_AS:
      i.nf = 16;
      i.blocks = 2;
      i.scale = 1;
      i.upsample = 4;
      i.size_multiple = 4;
      break;
    case imdn::Arch::kIMDN_RTC:
      i.nf = 12;
      i.blocks = 2;
      i.scale = 2;
      i.upsample = 2;
      break;
    case imdn::Arch::kIMDN_RTE:
      i.nf = 20;
      i.blocks = 2;
      i.scale = 2;
      i.upsample = 4;
      i.input_range = 255.f;
      break;
  }
  i.receptive_radius = 10;
  return i;
}

// A model file with Gaussian weights scaled by 1/sqrt(fan-in), so activations stay O(1).
inline std::vector<uint8_t> random_model_bytes(const imdn::ModelInfo& info, unsigned seed) {
  std::mt19937 rng(seed);
  std::map<std::string, imdn::Tensor> tensors;
  for (const auto& [name, shape] : imdn::Model::expected_tensors(info)) {
    imdn::Tensor t;
    t.shape = shape;
    size_t n = 1;
    for (uint32_t d : shape) n *= d;
    const size_t fan_in = shape.size() == 4 ? size_t(shape[1]) * shape[2] * shape[3] : 8;
    std::normal_distribution<float> dist(0.f, 1.f / std::sqrt(float(fan_in)));
    t.data.resize(n);
    for (float& v : t.data) v = dist(rng);
    tensors[name] = t;
  }
  return imdn::Model::serialize(info, tensors);
}

inline imdn::Model random_model(const imdn::ModelInfo& info, unsigned seed) {
  const std::vector<uint8_t> b = random_model_bytes(info, seed);
  return imdn::load_model(b.data(), b.size());
}

inline std::vector<float> random_image(size_t h, size_t w, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> v(h * w * 3);
  for (float& x : v) x = u(rng);
  return v;
}

}  // namespace testing_support
