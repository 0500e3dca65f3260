// libFuzzer target: PyTorch checkpoint bytes (legacy pickle stream or zip) -> read_checkpoint.
#include <cstdint>
#include <cstdlib>

#include "checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const imdn::Checkpoint c = imdn::read_checkpoint(data, size);
    if (c.tensors.empty()) std::abort();
  } catch (const imdn::Error&) {
  }
  return 0;
}
