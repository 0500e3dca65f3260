#include "preprocess.h"

#include "resize.h"

namespace imdn {

Image resize_to_target(const Image& input, size_t width, size_t height) {
  Image out;
  out.width = width;
  out.height = height;
  out.channels = input.channels;
  out.bit_depth = input.bit_depth;
  out.data = resize_bicubic(input.data.data(), input.height, input.width, size_t(input.channels), height, width);
  for (float& v : out.data) v = float(to_u8(v)) / 255.f;
  return out;
}

}  // namespace imdn
