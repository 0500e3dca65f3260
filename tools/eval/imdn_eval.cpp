// imdn-eval: the paper's Y-PSNR / SSIM of results against references.
//
//   imdn-eval --shave 4 out/baby.png Set5_HR/baby.bmp out/bird.png Set5_HR/bird.bmp ...
//
// Prints one line per pair and the means; references are cropped top-left to the result's size.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "image.h"
#include "metrics.h"

int main(int argc, char** argv) {
  size_t shave = 0;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--shave" && i + 1 < argc) {
      shave = size_t(std::strtoul(argv[++i], nullptr, 10));
    } else if (a == "-h" || a == "--help") {
      std::puts("usage: imdn-eval --shave N RESULT REFERENCE [RESULT REFERENCE ...]");
      return 0;
    } else {
      files.push_back(a);
    }
  }
  if (files.empty() || files.size() % 2) {
    std::fputs("usage: imdn-eval --shave N RESULT REFERENCE [RESULT REFERENCE ...]\n", stderr);
    return 2;
  }
  try {
    double psnr = 0, ssim = 0;
    for (size_t i = 0; i < files.size(); i += 2) {
      const imdn::Quality q = imdn::compare_y(imdn::load_image(files[i]), imdn::load_image(files[i + 1]), shave);
      std::printf("%s\tPSNR %.4f\tSSIM %.5f\n", files[i].c_str(), q.psnr, q.ssim);
      psnr += q.psnr;
      ssim += q.ssim;
    }
    const double n = double(files.size() / 2);
    std::printf("mean\tPSNR %.4f\tSSIM %.5f\n", psnr / n, ssim / n);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "imdn-eval: %s\n", e.what());
    return 1;
  }
  return 0;
}
