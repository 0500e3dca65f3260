// What an image goes through before the network: IMDN_AS's target size (a bicubic resize, then
// 8-bit quantization, as the authors prepared their inputs) and each pass's input plane (the
// colour, grey or alpha channel of a crop of it: Job::make_planes, job.cpp). What the
// pixels say for planning (grey, translucent, 8-bit) is shape_of (plan.h).
#pragma once

#include <cstddef>

#include "image.h"

namespace imdn {

// The image resized to width x height (MATLAB-style bicubic) and quantized to 8 bits.
Image resize_to_target(const Image& input, size_t width, size_t height);

}  // namespace imdn
