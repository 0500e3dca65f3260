#include "naive.h"

#include <cmath>
#include <string>

namespace naive {

namespace {

Map lrelu(Map x) {
  for (float& v : x.v) v = v < 0 ? 0.05f * v : v;
  return x;
}
Map relu(Map x) {
  for (float& v : x.v) v = v < 0 ? 0 : v;
  return x;
}

Map slice(const Map& x, int c0, int c1) {
  Map y(c1 - c0, x.h, x.w);
  std::copy(x.v.begin() + size_t(c0) * x.h * x.w, x.v.begin() + size_t(c1) * x.h * x.w, y.v.begin());
  return y;
}

Map cat(const std::vector<Map>& xs) {
  int c = 0;
  for (const Map& x : xs) c += x.c;
  Map y(c, xs[0].h, xs[0].w);
  size_t off = 0;
  for (const Map& x : xs) {
    std::copy(x.v.begin(), x.v.end(), y.v.begin() + off);
    off += x.v.size();
  }
  return y;
}

Map add(Map a, const Map& b) {
  for (size_t i = 0; i < a.v.size(); ++i) a.v[i] += b.v[i];
  return a;
}

// IMDModule (cca = true) and IMDModule_speed (cca = false).
Map imd_module(const imdn::Model& m, const std::string& p, const Map& input, bool with_cca) {
  const int d = input.c / 4, nf = input.c;
  Map c1 = lrelu(conv(input, m, p + "c1"));
  Map c2 = lrelu(conv(slice(c1, d, nf), m, p + "c2"));
  Map c3 = lrelu(conv(slice(c2, d, nf), m, p + "c3"));
  Map c4 = conv(slice(c3, d, nf), m, p + "c4");
  Map out = cat({slice(c1, 0, d), slice(c2, 0, d), slice(c3, 0, d), c4});
  if (with_cca) out = cca(out, m, p + "cca");
  return add(conv(out, m, p + "fuse"), input);
}

// IMDModule_Large.
Map imd_large(const imdn::Model& m, const std::string& p, const Map& input) {
  const int nf = input.c, d = nf / 4, rem = nf - d;
  Map c1 = relu(conv(input, m, p + "c1"));
  Map c2 = relu(conv(slice(c1, d, nf), m, p + "c2"));
  Map c3 = relu(conv(slice(c2, d, nf), m, p + "c3"));
  Map c4 = relu(conv(slice(c3, d, nf), m, p + "c4"));
  Map c5 = relu(conv(slice(c4, d, rem), m, p + "c5"));
  Map c6 = relu(conv(slice(c5, d, rem - d), m, p + "c6"));
  Map out = cat({slice(c1, 0, d), slice(c2, 0, d), slice(c3, 0, d), slice(c4, 0, d), slice(c5, 0, d), c6});
  return add(conv(out, m, p + "fuse"), input);
}

std::string blk(int i) { return "blocks." + std::to_string(i) + "."; }

}  // namespace

Map conv(const Map& x, const imdn::Model& m, const std::string& name, int stride) {
  const imdn::Tensor& w = m.tensor(name + ".weight");
  const int cout = int(w.shape[0]), cin = int(w.shape[1]), k = int(w.shape[2]), pad = k / 2;
  if (cin != x.c) throw imdn::Error("naive conv " + name + ": channel mismatch");
  const imdn::Tensor* b = m.has(name + ".bias") ? &m.tensor(name + ".bias") : nullptr;
  const int oh = (x.h + 2 * pad - k) / stride + 1, ow = (x.w + 2 * pad - k) / stride + 1;
  Map y(cout, oh, ow);
  for (int o = 0; o < cout; ++o)
    for (int yy = 0; yy < oh; ++yy)
      for (int xx = 0; xx < ow; ++xx) {
        double s = b ? b->data[o] : 0.0;
        for (int i = 0; i < cin; ++i)
          for (int ky = 0; ky < k; ++ky)
            for (int kx = 0; kx < k; ++kx) {
              const int iy = yy * stride + ky - pad, ix = xx * stride + kx - pad;
              if (iy < 0 || ix < 0 || iy >= x.h || ix >= x.w) continue;
              s += double(w.data[((size_t(o) * cin + i) * k + ky) * k + kx]) * x.at(i, iy, ix);
            }
        y.at(o, yy, xx) = float(s);
      }
  return y;
}

Map cca(const Map& x, const imdn::Model& m, const std::string& p) {
  // stdv_channels + mean_channels, then conv_du (1x1, ReLU, 1x1, Sigmoid), then x * y.
  Map y(x.c, 1, 1);
  const double n = double(x.h) * x.w;
  for (int c = 0; c < x.c; ++c) {
    double mean = 0, var = 0;
    for (int i = 0; i < x.h * x.w; ++i) mean += x.v[size_t(c) * x.h * x.w + i];
    mean /= n;
    for (int i = 0; i < x.h * x.w; ++i) {
      const double dlt = x.v[size_t(c) * x.h * x.w + i] - mean;
      var += dlt * dlt;
    }
    y.at(c, 0, 0) = float(std::sqrt(var / n) + mean);
  }
  Map z = conv(relu(conv(y, m, p + ".0")), m, p + ".1");
  Map out = x;
  for (int c = 0; c < x.c; ++c) {
    const float s = float(1.0 / (1.0 + std::exp(-double(z.at(c, 0, 0)))));
    for (int i = 0; i < x.h * x.w; ++i) out.v[size_t(c) * x.h * x.w + i] *= s;
  }
  return out;
}

Map pixel_shuffle(const Map& x, int r) {
  Map y(x.c / (r * r), x.h * r, x.w * r);
  for (int c = 0; c < y.c; ++c)
    for (int yy = 0; yy < y.h; ++yy)
      for (int xx = 0; xx < y.w; ++xx) y.at(c, yy, xx) = x.at(c * r * r + (yy % r) * r + xx % r, yy / r, xx / r);
  return y;
}

Map forward(const imdn::Model& m, const Map& input) {
  const imdn::ModelInfo& info = m.info();
  Map in = input;
  for (float& v : in.v) v *= info.input_range;
  Map out;
  switch (info.arch) {
    case imdn::Arch::kIMDN:
    case imdn::Arch::kIMDN_AS: {
      Map fea = info.arch == imdn::Arch::kIMDN ? conv(in, m, "stem.0")
                                               : conv(lrelu(conv(in, m, "stem.0", 2)), m, "stem.1", 2);
      std::vector<Map> outs;
      Map x = fea;
      for (int b = 0; b < int(info.blocks); ++b) outs.push_back(x = imd_module(m, blk(b), x, true));
      Map body = lrelu(conv(cat(outs), m, "fusion"));
      out = pixel_shuffle(conv(add(conv(body, m, "lr"), fea), m, "up"), int(info.upsample));
      break;
    }
    case imdn::Arch::kIMDN_RTC: {
      Map fea = conv(in, m, "stem.0");
      Map x = fea;
      for (int b = 0; b < int(info.blocks); ++b) x = imd_module(m, blk(b), x, false);
      out = pixel_shuffle(conv(add(conv(x, m, "lr"), fea), m, "up"), int(info.upsample));
      break;
    }
    case imdn::Arch::kIMDN_RTE: {
      Map fea = conv(relu(conv(in, m, "stem.0")), m, "stem.1", 2);
      Map x = fea;
      for (int b = 0; b < int(info.blocks); ++b) x = imd_large(m, blk(b), x);
      out = pixel_shuffle(conv(add(conv(x, m, "lr"), fea), m, "up"), int(info.upsample));
      // Odd sides: the stride-2 stem rounds up; the output keeps the top-left 2H x 2W.
      Map crop(3, input.h * int(info.scale), input.w * int(info.scale));
      for (int c = 0; c < 3; ++c)
        for (int y = 0; y < crop.h; ++y)
          for (int x2 = 0; x2 < crop.w; ++x2) crop.at(c, y, x2) = out.at(c, y, x2);
      out = crop;
      break;
    }
  }
  for (float& v : out.v) v /= info.input_range;
  return out;
}

Map from_hwc(const float* hwc, int h, int w) {
  Map x(3, h, w);
  for (int y = 0; y < h; ++y)
    for (int xx = 0; xx < w; ++xx)
      for (int c = 0; c < 3; ++c) x.at(c, y, xx) = hwc[(size_t(y) * w + xx) * 3 + c];
  return x;
}

std::vector<float> to_hwc(const Map& x) {
  std::vector<float> out(size_t(x.h) * x.w * x.c);
  for (int y = 0; y < x.h; ++y)
    for (int xx = 0; xx < x.w; ++xx)
      for (int c = 0; c < x.c; ++c) out[(size_t(y) * x.w + xx) * x.c + c] = x.at(c, y, xx);
  return out;
}

}  // namespace naive
