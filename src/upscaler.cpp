#include "upscaler.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "ops.h"
#include "resize.h"

namespace imdn {

namespace {

std::string dims(size_t w, size_t h) { return std::to_string(w) + "x" + std::to_string(h); }

// Copies rows [y0, y0+ch) x cols [x0, x0+cw) of an h x w RGB image.
std::vector<float> crop(const float* rgb, size_t w, size_t y0, size_t x0, size_t ch, size_t cw) {
  std::vector<float> out(ch * cw * 3);
  for (size_t y = 0; y < ch; ++y) std::copy_n(rgb + ((y0 + y) * w + x0) * 3, cw * 3, out.data() + y * cw * 3);
  return out;
}

// IMDN_AS's crop_forward (the authors' test_IMDN_AS.py, shave 32): the side of its four corner
// crops, half the image plus 32, rounded down to a multiple of 4.
size_t as_crop_side(size_t n) { return n / 2 + 32 - (n / 2 + 32) % 4; }

}  // namespace

// Sets the progress callback for `passes` passes of the tiled network while it lives; without a
// callback it leaves whatever an enclosing call set.
struct Upscaler::ProgressScope {
  ProgressScope(Upscaler* u, const std::function<void(size_t, size_t)>& progress, size_t passes)
      : u_(u), on_(bool(progress)) {
    if (!on_) return;
    u_->progress_ = progress;
    u_->pass_ = 0;
    u_->passes_ = passes;
  }
  ~ProgressScope() {
    if (on_) u_->progress_ = nullptr;
  }
  Upscaler* u_;
  bool on_;
};

Upscaler::Upscaler(const Model& model, size_t threads) : net_(model, threads) {}

TiledNetwork& Upscaler::tiled(size_t tile) {
  if (tile == 0) tile = kTile;
  if (!tiled_ || tiled_->tile() != tile) tiled_ = std::make_unique<TiledNetwork>(net_, tile);
  return *tiled_;
}

std::pair<size_t, size_t> Upscaler::output_size(size_t w, size_t h, const UpscaleOptions& o) const {
  if (w == 0 || h == 0) throw Error("image is empty (" + dims(w, h) + ")");
  size_t ow = w * info().scale, oh = h * info().scale;
  if (o.target_width || o.target_height) {
    if (info().arch != Arch::kIMDN_AS) {
      throw Error(std::string("a target size needs the IMDN_AS model; ") + arch_name(info().arch) + " upscales by x" +
                  std::to_string(info().scale));
    }
    if (!o.target_width || !o.target_height) throw Error("a target size needs both width and height");
    ow = o.target_width;
    oh = o.target_height;
  }
  if (w > (1u << 20) || h > (1u << 20) || ow > (1u << 20) || oh > (1u << 20) || ow * oh > kMaxImagePixels) {
    throw Error("output of " + dims(ow, oh) + " pixels is too large (limit " + std::to_string(kMaxImagePixels >> 20) +
                " Mpx)");
  }
  return {ow, oh};
}

void Upscaler::run_pass(size_t tile, const float* in, size_t h, size_t w, float* out, const TiledNetwork::RowSink& sink) {
  if (progress_) {
    const size_t pass = pass_;
    tiled(tile).run(in, h, w, out, [&](size_t done, size_t total) { progress_(pass * total + done, passes_ * total); }, sink);
  } else {
    tiled(tile).run(in, h, w, out, nullptr, sink);
  }
  ++pass_;
}

size_t Upscaler::passes_of(size_t h, size_t w) const {
  const size_t m = info().size_multiple;
  if (m > 1 && (h % m || w % m)) return as_crop_side(h) <= h && as_crop_side(w) <= w ? 4 : 1;
  return 1;
}

std::vector<float> Upscaler::run_as_any_size(const float* rgb, size_t h, size_t w, size_t tile) {
  // The authors' crop_forward: four crops of h_size x w_size from the four corners; each
  // contributes the quadrant nearest its corner.
  const size_t h_half = h / 2, w_half = w / 2, h_size = as_crop_side(h), w_size = as_crop_side(w);
  std::vector<float> out(h * w * 3);
  if (h_size <= h && w_size <= w) {
    std::vector<float> part(h_size * w_size * 3);
    const size_t ys[2] = {0, h - h_size}, xs[2] = {0, w - w_size};
    for (int qy = 0; qy < 2; ++qy)
      for (int qx = 0; qx < 2; ++qx) {
        const std::vector<float> in = crop(rgb, w, ys[qy], xs[qx], h_size, w_size);
        run_pass(tile, in.data(), h_size, w_size, part.data());
        const size_t y0 = qy ? h_half : 0, y1 = qy ? h : h_half, x0 = qx ? w_half : 0, x1 = qx ? w : w_half;
        for (size_t y = y0; y < y1; ++y)
          std::copy_n(part.data() + ((y - ys[qy]) * w_size + (x0 - xs[qx])) * 3, (x1 - x0) * 3, out.data() + (y * w + x0) * 3);
      }
    return out;
  }
  // Too small for the crops: replicate the edges up to multiples of 4 and cut the result back.
  const size_t ph = (h + 3) / 4 * 4, pw = (w + 3) / 4 * 4;
  std::vector<float> padded(ph * pw * 3), result(ph * pw * 3);
  for (size_t y = 0; y < ph; ++y)
    for (size_t x = 0; x < pw; ++x)
      std::copy_n(rgb + (std::min(y, h - 1) * w + std::min(x, w - 1)) * 3, 3, padded.data() + (y * pw + x) * 3);
  run_pass(tile, padded.data(), ph, pw, result.data());
  for (size_t y = 0; y < h; ++y) std::copy_n(result.data() + y * pw * 3, w * 3, out.data() + y * w * 3);
  return out;
}

std::vector<float> Upscaler::run_rgb(const float* rgb, size_t h, size_t w, size_t* oh, size_t* ow, size_t tile,
                                     const std::function<void(size_t, size_t)>& progress,
                                     const TiledNetwork::RowSink& sink) {
  const auto [out_w, out_h] = output_size(w, h);
  *oh = out_h;
  *ow = out_w;
  const ProgressScope scope(this, progress, passes_of(h, w));
  const size_t m = info().size_multiple;
  if (m > 1 && (h % m || w % m)) {
    std::vector<float> out = run_as_any_size(rgb, h, w, tile);
    if (!sink) return out;
    for (size_t y = 0; y < out_h; ++y) sink(y, 0, out_w, out.data() + y * out_w * 3);
    return {};
  }
  if (sink) {
    run_pass(tile, rgb, h, w, nullptr, sink);
    return {};
  }
  std::vector<float> out(out_h * out_w * 3);
  run_pass(tile, rgb, h, w, out.data());
  return out;
}

Image Upscaler::upscale(const Image& input, const UpscaleOptions& options) {
  if (input.channels < 1 || input.channels > 4 || input.data.size() != input.width * input.height * size_t(input.channels)) {
    throw Error("malformed image: " + std::to_string(input.channels) + " channels, " + std::to_string(input.data.size()) +
                " values for " + dims(input.width, input.height));
  }
  const auto [out_w, out_h] = output_size(input.width, input.height, options);
  const Image* src = &input;
  Image resized;
  if (options.target_width) {
    resized = input;
    resized.width = out_w;
    resized.height = out_h;
    resized.data = resize_bicubic(input.data.data(), input.height, input.width, size_t(input.channels), out_h, out_w);
    for (float& v : resized.data) v = float(to_u8(v)) / 255.f;
    src = &resized;
  }
  const size_t h = src->height, w = src->width, n = h * w, ch = size_t(src->channels);
  const bool gray = ch <= 2;
  const size_t alpha = src->has_alpha() ? ch - 1 : 0;

  bool opaque = true;
  if (alpha) {
    for (size_t p = 0; p < n && opaque; ++p) opaque = src->data[p * ch + alpha] >= 1.f;
  }
  // Progress over both passes (colour, then alpha when it is not opaque).
  const ProgressScope scope(this, options.progress, passes_of(h, w) * (alpha && !opaque ? 2 : 1));

  std::vector<float> rgb(n * 3);
  for (size_t p = 0; p < n; ++p)
    for (size_t c = 0; c < 3; ++c) rgb[p * 3 + c] = src->data[p * ch + (gray ? 0 : c)];
  size_t oh = 0, ow = 0;
  std::vector<float> colour = run_rgb(rgb.data(), h, w, &oh, &ow, options.tile);

  Image out;
  out.width = ow;
  out.height = oh;
  out.channels = src->channels;
  out.bit_depth = 8;
  const size_t on = ow * oh;
  if (ch == 3) {
    out.data = std::move(colour);  // RGB: the network's output as it is (no second copy of it)
    return out;
  }
  out.data.resize(ow * oh * ch);
  ops::parallel_rows(net_.pool(), on, 1 << 14, [&](size_t b, size_t e) {
    for (size_t p = b; p < e; ++p) {
      if (gray) {
        out.data[p * ch] = (colour[p * 3] + colour[p * 3 + 1] + colour[p * 3 + 2]) / 3.f;
      } else {
        for (size_t c = 0; c < 3; ++c) out.data[p * ch + c] = colour[p * 3 + c];
      }
    }
  });
  if (alpha) {
    if (opaque) {
      for (size_t p = 0; p < on; ++p) out.data[p * ch + alpha] = 1.f;
    } else {
      for (size_t p = 0; p < n; ++p) rgb[p * 3] = rgb[p * 3 + 1] = rgb[p * 3 + 2] = src->data[p * ch + alpha];
      const std::vector<float> a = run_rgb(rgb.data(), h, w, &oh, &ow, options.tile);
      for (size_t p = 0; p < on; ++p) {
        out.data[p * ch + alpha] = std::min(1.f, std::max(0.f, (a[p * 3] + a[p * 3 + 1] + a[p * 3 + 2]) / 3.f));
      }
    }
  }
  return out;
}

}  // namespace imdn
