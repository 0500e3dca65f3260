// The paper's metrics: PSNR and SSIM on the Y channel of ITU-R BT.601 as MATLAB's rgb2ycbcr
// computes it, Y kept as a float, `shave` pixels cut from every border.
#pragma once

#include <cstddef>
#include <vector>

#include "image.h"

namespace imdn {

// Y in [16, 235] of an image's 8-bit quantized colours (grey images: R = G = B).
std::vector<double> luma(const Image& image);

struct Quality {
  double psnr = 0, ssim = 0;
};

// Compares the top-left region both images share (HR images are cropped to the SR size, as
// modcrop does). Wang et al.'s SSIM: 11x11 Gaussian window, sigma 1.5, 'valid' area, L = 255.
Quality compare_y(const Image& result, const Image& reference, size_t shave);

}  // namespace imdn
