// libFuzzer target: model file bytes (.imdn, or a checkpoint: load_model takes both) -> Model.
// A model that parses must serialize and parse back to the same bytes.
#include <cstdint>
#include <cstdlib>

#include "loader.h"
#include "model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const imdn::Model m = imdn::load_model(data, size);
    const std::vector<uint8_t> again = m.serialize();
    if (imdn::load_model(again.data(), again.size()).serialize() != again) std::abort();
  } catch (const imdn::Error&) {
  }
  return 0;
}
