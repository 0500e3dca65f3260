// Bicubic resize as MATLAB's imresize computes it (Keys cubic, a = -0.5, symmetric borders,
// antialiasing when shrinking), on interleaved float images. IMDN_AS's "any scale" mode resizes
// with it first, as the authors' data pipeline did.
#pragma once

#include <cstddef>
#include <vector>

namespace imdn {

std::vector<float> resize_bicubic(const float* in, size_t h, size_t w, size_t channels, size_t oh, size_t ow);

}  // namespace imdn
