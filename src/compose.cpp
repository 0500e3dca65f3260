// The output: allocated when the first tail begins (by then the maps the tail does not read are
// given back, and it takes their place), and each tail unit's pixels composed into it: colour as
// it is, a grey plane spread to RGB, an alpha plane's mean clamped into the alpha channel; RGBA
// bytes or floats, here or in the job's external memory.
#include <algorithm>

#include "job.h"

namespace imdn {

void Job::begin_output() {
  if (!out8_.empty() || !outf_.empty() || out_id_ >= 0) return;
  const size_t W = plan_.out_w, H = plan_.out_h, C = size_t(plan_.out_c);
  if (plan_.options.rgba8 && plan_.options.external) {
    out_id_ = plan_.options.external->allocate(uint64_t(W) * H * 4, 0xFF000000u, true);  // opaque black
    if (out_id_ < 0) throw std::bad_alloc();
  } else if (plan_.options.rgba8) {
    out8_.assign(W * H * 4, 0);
    for (size_t p = 0; p < W * H; ++p) out8_[p * 4 + 3] = 255;
  } else {
    outf_.assign(W * H * C, 0.f);
    if (plan_.fill_alpha)
      for (size_t p = 0; p < W * H; ++p) outf_[p * C + C - 1] = 1.f;
  }
}

namespace {

// One pixel of a pass's RGB output (src) into the output pixel at o, C channels: bytes (out8) or
// floats (outf).
inline void compose_pixel(PassPlan::Role role, const float* src, size_t C, uint8_t* out8, float* outf) {
  if (role == PassPlan::kColour) {
    for (size_t c = 0; c < 3; ++c) {
      if (out8)
        out8[c] = to_u8(src[c]);
      else
        outf[c] = src[c];
    }
    return;
  }
  const float m = (src[0] + src[1] + src[2]) / 3.f;
  if (role == PassPlan::kAlpha) {
    const float a8 = std::min(1.f, std::max(0.f, m));
    if (out8)
      out8[3] = to_u8(a8);
    else
      outf[C - 1] = a8;
  } else if (out8) {
    out8[0] = out8[1] = out8[2] = to_u8(m);
  } else {
    for (size_t c = 0; c < (C <= 2 ? 1 : 3); ++c) outf[c] = m;
  }
}

}  // namespace

// Unit i's output pixels (d.a[0], d.head.oh x d.head.ow RGB) into the result: the part of its
// tile that the pass keeps, where it goes. Returns that output rectangle (empty if none).
Rect Job::compose_tail(size_t i, const UnitData& d) {
  const Unit& u = plan_.units.at(i);
  const PassPlan& p = plan_.passes[u.pass];
  const size_t r = net_.upsample(), oh = d.head.oh, ow = d.head.ow, y0 = u.tile.y * r, x0 = u.tile.x * r;
  if (d.a[0].size() != oh * ow * 3 || d.head.cy != u.tile.y - u.crop.y || d.head.cx != u.tile.x - u.crop.x)
    throw Error("unit result does not match its unit");
  const size_t ky0 = std::max(y0, p.keep.y), ky1 = std::min(y0 + oh, p.keep.y + p.keep.h);
  const size_t kx0 = std::max(x0, p.keep.x), kx1 = std::min(x0 + ow, p.keep.x + p.keep.w);
  if (ky0 >= ky1 || kx0 >= kx1) return {};
  const Rect done{p.oy + ky0 - p.keep.y, p.ox + kx0 - p.keep.x, ky1 - ky0, kx1 - kx0};
  const size_t C = size_t(plan_.out_c), W = plan_.out_w;
  const bool eight = plan_.options.rgba8;
  // The output's rows of `done` (external: a copy of them here, read, changed, written back: the
  // planes of a grey or alpha image each write their own channels).
  std::vector<uint8_t> outside;
  if (out_id_ >= 0) {
    outside.resize(done.h * done.w * 4);
    read_rgba8(done, outside.data());
  }
  uint8_t* out8 = !eight ? nullptr : out_id_ >= 0 ? outside.data() : out8_.data() + (done.y * W + done.x) * C;
  float* outf = eight ? nullptr : outf_.data() + (done.y * W + done.x) * C;
  const size_t stride = out_id_ >= 0 ? done.w : W;
  ops::parallel_rows(net_.pool(), ky1 - ky0, copy_grain((kx1 - kx0) * 3), [&](size_t a, size_t b) {
    for (size_t y = ky0 + a; y < ky0 + b; ++y) {
      const float* src = d.a[0].data() + ((y - y0) * ow + (kx0 - x0)) * 3;
      const size_t row = (y - ky0) * stride;
      for (size_t k = 0; k < kx1 - kx0; ++k, src += 3) {
        const size_t o = (row + k) * C;
        compose_pixel(p.role, src, C, out8 ? out8 + o : nullptr, outf ? outf + o : nullptr);
      }
    }
  });
  if (out_id_ >= 0)
    plan_.options.external->write_rows(out_id_, (uint64_t(done.y) * W + done.x) * 4, done.w * 4, uint64_t(W) * 4,
                                       done.h, outside.data());
  return done;
}

void Job::read_rgba8(const Rect& r, uint8_t* dst) const {
  const size_t W = plan_.out_w;
  if (out_id_ < 0) {
    for (size_t y = 0; y < r.h; ++y) std::copy_n(out8_.data() + ((r.y + y) * W + r.x) * 4, r.w * 4, dst + y * r.w * 4);
    return;
  }
  plan_.options.external->read_rows(out_id_, (uint64_t(r.y) * W + r.x) * 4, r.w * 4, uint64_t(W) * 4, r.h, dst);
}

Image Job::take_image() {
  Image out;
  out.width = plan_.out_w;
  out.height = plan_.out_h;
  out.channels = plan_.out_c;
  out.bit_depth = 8;
  out.data = std::move(outf_);
  return out;
}

}  // namespace imdn
