// libFuzzer target: image file bytes -> decode_image (stb_image behind our header checks).
#include <cstdint>
#include <cstdlib>

#include "image.h"
#include "model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    // A small limit keeps each run fast; the header checks run before it matters.
    const imdn::Image img = imdn::decode_image(data, size, size_t(1) << 22);
    if (img.width * img.height * size_t(img.channels) != img.data.size()) std::abort();
  } catch (const imdn::Error&) {
  }
  return 0;
}
