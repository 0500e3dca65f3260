#include "metrics.h"

#include <algorithm>
#include <cmath>

#include "model.h"

namespace imdn {

std::vector<double> luma(const Image& image) {
  const size_t n = image.width * image.height, ch = size_t(image.channels);
  std::vector<double> y(n);
  for (size_t p = 0; p < n; ++p) {
    const double r = to_u8(image.data[p * ch]) / 255.0;
    const double g = ch >= 3 ? to_u8(image.data[p * ch + 1]) / 255.0 : r;
    const double b = ch >= 3 ? to_u8(image.data[p * ch + 2]) / 255.0 : r;
    y[p] = 16.0 + 65.481 * r + 128.553 * g + 24.966 * b;
  }
  return y;
}

Quality compare_y(const Image& result, const Image& reference, size_t shave) {
  if (reference.width < result.width || reference.height < result.height) {
    throw Error("reference image is smaller than the result");
  }
  if (result.width <= 2 * shave || result.height <= 2 * shave) throw Error("image too small for the shave");
  const size_t w = result.width - 2 * shave, h = result.height - 2 * shave;
  const std::vector<double> ya = luma(result), yb = luma(reference);
  std::vector<double> a(w * h), b(w * h);
  for (size_t y = 0; y < h; ++y)
    for (size_t x = 0; x < w; ++x) {
      a[y * w + x] = ya[(y + shave) * result.width + x + shave];
      b[y * w + x] = yb[(y + shave) * reference.width + x + shave];
    }
  Quality q;
  double mse = 0;
  for (size_t i = 0; i < a.size(); ++i) mse += (a[i] - b[i]) * (a[i] - b[i]);
  mse /= double(a.size());
  q.psnr = mse == 0 ? INFINITY : 10 * std::log10(255.0 * 255.0 / mse);

  // SSIM with a separable 11x11 Gaussian over the 'valid' area.
  constexpr int kWin = 11;
  double g[kWin], gs = 0;
  for (int i = 0; i < kWin; ++i) gs += g[i] = std::exp(-double((i - 5) * (i - 5)) / (2 * 1.5 * 1.5));
  for (double& v : g) v /= gs;
  if (w < size_t(kWin) || h < size_t(kWin)) throw Error("image too small for SSIM");
  const size_t vw = w - kWin + 1, vh = h - kWin + 1;
  auto filter = [&](const std::vector<double>& src) {
    std::vector<double> tmp(h * vw), out(vh * vw);
    for (size_t y = 0; y < h; ++y)
      for (size_t x = 0; x < vw; ++x) {
        double s = 0;
        for (int k = 0; k < kWin; ++k) s += g[k] * src[y * w + x + k];
        tmp[y * vw + x] = s;
      }
    for (size_t y = 0; y < vh; ++y)
      for (size_t x = 0; x < vw; ++x) {
        double s = 0;
        for (int k = 0; k < kWin; ++k) s += g[k] * tmp[(y + k) * vw + x];
        out[y * vw + x] = s;
      }
    return out;
  };
  std::vector<double> aa(a.size()), bb(a.size()), ab(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    aa[i] = a[i] * a[i];
    bb[i] = b[i] * b[i];
    ab[i] = a[i] * b[i];
  }
  const std::vector<double> ma = filter(a), mb = filter(b), saa = filter(aa), sbb = filter(bb), sab = filter(ab);
  const double c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255);
  double total = 0;
  for (size_t i = 0; i < ma.size(); ++i) {
    const double va = saa[i] - ma[i] * ma[i], vb = sbb[i] - mb[i] * mb[i], cov = sab[i] - ma[i] * mb[i];
    total += ((2 * ma[i] * mb[i] + c1) * (2 * cov + c2)) / ((ma[i] * ma[i] + mb[i] * mb[i] + c1) * (va + vb + c2));
  }
  q.ssim = total / double(ma.size());
  return q;
}

}  // namespace imdn
