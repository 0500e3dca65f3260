// Feature maps and scratch: float storage on 64-byte boundaries (cache lines), so that 16-byte
// SIMD loads and stores never straddle two lines (8-byte-aligned buffers make every fourth one
// do so, which costs most where two threads stream through memory at once), with the slack that
// XNNPACK's kernels may read past the end (XNN_EXTRA_BYTES). Grows, never shrinks; contents are
// not kept across a growth nor initialized.
#pragma once

#include <xnnpack.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "model.h"

namespace imdn {

class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { std::free(data_); }
  void resize(size_t floats) {
    if (floats <= capacity_) return;
    std::free(data_);
    data_ = nullptr;
    capacity_ = 0;
    const size_t bytes = ((floats * sizeof(float) + XNN_EXTRA_BYTES + 63) / 64) * 64;
    data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (data_ == nullptr)
      throw Error("out of memory allocating " + std::to_string(bytes >> 20) + " MiB of feature maps");
    capacity_ = floats;
  }
  float* data() const { return data_; }
  // Gives the memory back (a map whose job is done).
  void release() {
    std::free(data_);
    data_ = nullptr;
    capacity_ = 0;
  }

 private:
  float* data_ = nullptr;
  size_t capacity_ = 0;
};

// The scratch a network's units and copies reuse from unit to unit and job to job (fresh memory
// costs page faults, more than the work on it): three float buffers for a unit's whole-crop
// outputs, and one of float16 values for maps that live outside (maps.h). One per Network
// (Network::workspace), whose units one thread at a time runs.
struct Workspace {
  Buffer floats[3];
  Buffer halves;  // (as floats: two float16 values each)
  float* get(size_t k, size_t n) {
    floats[k].resize(n);
    return floats[k].data();
  }
  uint16_t* staging(size_t n) {
    halves.resize((n + 1) / 2);
    return reinterpret_cast<uint16_t*>(halves.data());
  }
};

}  // namespace imdn
