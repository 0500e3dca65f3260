// Embind surface of the WebAssembly build: a small, JS-shaped API over the C++ core.
//
//   const engine = new Module.Engine(modelBytes);
//   if (engine.error()) { ... engine.delete(); }          // the model was refused, with the reason
//   const out = engine.upscale(pixels, w, h, channels, { raw: false });
//   // { width, height, channels, data } or { error }; data is a fresh JS-owned array
//   engine.delete();
//
// Failures never throw across the boundary: they come back as { error: message } and the JS
// wrapper (wasm/engine.js) turns them into Error objects.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "architecture.h"
#include "image.h"
#include "model.h"
#include "network.h"
#include "ops.h"
#include "upscaler.h"

using emscripten::val;

namespace {

// Copies a JS typed array (any of the 8-bit ones) into C++ memory with one memcpy on the JS side.
std::vector<uint8_t> bytes_of(const val& array) {
  const size_t n = array["length"].as<size_t>();
  std::vector<uint8_t> out(n);
  val(emscripten::typed_memory_view(n, out.data())).call<void>("set", array);
  return out;
}

template <typename T>
val js_copy(const std::vector<T>& v) {
  return val(emscripten::typed_memory_view(v.size(), v.data())).call<val>("slice");
}

template <typename T>
val js_copy(const T* p, size_t n) {
  return val(emscripten::typed_memory_view(n, p)).call<val>("slice");
}

// A Float32Array (or Float64Array, for T = double) into C++ memory.
template <typename T>
std::vector<T> numbers_of(const val& array) {
  const size_t n = array["length"].as<size_t>();
  std::vector<T> out(n);
  val(emscripten::typed_memory_view(n, out.data())).call<void>("set", array);
  return out;
}

// { width, height, channels, data: Uint8Array } of an image, quantized to 8 bits (split across
// the pool's threads, if any).
val image_to_js(const imdn::Image& img, pthreadpool_t pool = nullptr) {
  std::vector<uint8_t> px(img.data.size());
  imdn::ops::parallel_rows(pool, px.size(), 1 << 16, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) px[i] = imdn::to_u8(img.data[i]);
  });
  val r = val::object();
  r.set("width", img.width);
  r.set("height", img.height);
  r.set("channels", img.channels);
  r.set("data", js_copy(px));
  return r;
}

struct Core {  // a tile's own rectangle inside its crop
  size_t x, y, w, h;
};

Core core_of(const val& c, size_t crop_w, size_t crop_h) {
  Core r{c["x"].as<size_t>(), c["y"].as<size_t>(), c["w"].as<size_t>(), c["h"].as<size_t>()};
  if (r.w == 0 || r.h == 0 || r.x + r.w > crop_w || r.y + r.h > crop_h) throw imdn::Error("tile core outside its crop");
  return r;
}

// ---- Shared feature maps (SharedArrayBuffer, when the page is cross-origin isolated or under
// ---- Node): the stages read their crops from and write their results to the maps directly, so
// ---- that no crop is copied into a message and no result buffer is left to the garbage collector.

struct Rect {  // in map coordinates
  size_t x, y, w, h;
};

Rect rect_of(const val& r) { return {r["x"].as<size_t>(), r["y"].as<size_t>(), r["w"].as<size_t>(), r["h"].as<size_t>()}; }

std::vector<float> read_rect(const val& map, size_t map_w, const Rect& r, size_t channels) {
  std::vector<float> out(r.w * r.h * channels);
  const size_t map_len = map["length"].as<size_t>();
  for (size_t y = 0; y < r.h; ++y) {
    const size_t start = ((r.y + y) * map_w + r.x) * channels;
    if (start + r.w * channels > map_len) throw imdn::Error("crop outside the feature map");
    val row = map.call<val>("subarray", start, start + r.w * channels);
    val(emscripten::typed_memory_view(r.w * channels, out.data() + y * r.w * channels)).call<void>("set", row);
  }
  return out;
}

// Writes rect `core` of data laid out as rect `from` into the map.
void write_rect(const val& map, size_t map_w, const Rect& from, const Rect& core, size_t channels, const float* data) {
  const size_t map_len = map["length"].as<size_t>();
  for (size_t y = 0; y < core.h; ++y) {
    const size_t dst = ((core.y + y) * map_w + core.x) * channels;
    if (dst + core.w * channels > map_len) throw imdn::Error("tile outside the feature map");
    const float* src = data + ((core.y - from.y + y) * from.w + (core.x - from.x)) * channels;
    map.call<void>("set", val(emscripten::typed_memory_view(core.w * channels, src)), dst);
  }
}

// The core rows of an NHWC crop, contiguous.
std::vector<float> core_rows(const std::vector<float>& crop, size_t crop_w, const Core& c, size_t channels) {
  std::vector<float> out(c.w * c.h * channels);
  for (size_t y = 0; y < c.h; ++y) {
    std::copy_n(crop.data() + ((c.y + y) * crop_w + c.x) * channels, c.w * channels, out.data() + y * c.w * channels);
  }
  return out;
}

val failure(const std::string& message) {
  val r = val::object();
  r.set("error", message);
  return r;
}

// Thrown from a progress callback that asks to stop.
struct Cancelled : imdn::Error {
  Cancelled() : imdn::Error("cancelled") {}
};

class Engine {
 public:
  // threads: 1, or, in the threaded module (dist/imdn-mt.*), how many threads share each
  // operator: this one and threads - 1 pthreads from the pool started with the module.
  Engine(const val& model_bytes, int threads) {
    try {
      const std::vector<uint8_t> b = bytes_of(model_bytes);
      upscaler_ = std::make_unique<imdn::Upscaler>(imdn::Model::parse(b.data(), b.size()), size_t(std::max(1, threads)));
    } catch (const std::exception& e) {
      error_ = e.what();
    }
  }

  // Why the model was refused; empty when the engine is usable.
  std::string error() const { return error_; }

  val info() const {
    if (!upscaler_) return failure(error_);
    const imdn::ModelInfo& i = upscaler_->info();
    val r = val::object();
    r.set("arch", std::string(imdn::arch_name(i.arch)));
    r.set("nf", i.nf);
    r.set("blocks", i.blocks);
    r.set("scale", i.scale);
    r.set("upsample", i.upsample);
    r.set("inputRange", i.input_range);
    r.set("receptiveRadius", i.receptive_radius);
    r.set("sizeMultiple", i.size_multiple);
    const imdn::Architecture a = imdn::Architecture::of(i);
    r.set("alignment", a.stem_stride());
    r.set("stemStride", a.stem_stride());
    r.set("steps", a.block.steps.size());
    r.set("catChannels", a.block.cat_channels());
    r.set("attention", a.block.cca);
    r.set("fusion", a.fusion);
    // Multiply-accumulates by stage (tools/bench): per body pixel of a block's steps, of its
    // pointwise rest, of the tail; per input pixel of the stem (approximately).
    r.set("macsBlockA", double(a.macs_block_a_per_pixel()));
    r.set("macsBlockB", double(a.macs_block_b_per_pixel()));
    r.set("macsTail", double(a.macs_tail_per_pixel()));
    return r;
  }

  // pixels: width*height*channels 8-bit values (channels 1-4). options: { targetWidth,
  // targetHeight, raw, tile, onProgress }. raw: the network's unclamped RGB floats (Float32Array)
  // instead of 8-bit. onProgress(done, total) after each unit of work; returning true stops the
  // work: the result is then { error: 'cancelled', cancelled: true }.
  val upscale(const val& pixels, int width, int height, int channels, const val& options) {
    if (!upscaler_) return failure(error_);
    try {
      if (width <= 0 || height <= 0) throw imdn::Error("image is empty (" + std::to_string(width) + "x" + std::to_string(height) + ")");
      if (channels < 1 || channels > 4) throw imdn::Error("channels must be 1 to 4");
      const size_t n = size_t(width) * size_t(height) * size_t(channels);
      if (pixels["length"].as<size_t>() != n) {
        throw imdn::Error("pixel data has " + std::to_string(pixels["length"].as<size_t>()) + " values; " +
                          std::to_string(width) + "x" + std::to_string(height) + "x" + std::to_string(channels) +
                          " needs " + std::to_string(n));
      }
      imdn::UpscaleOptions o;
      if (options["targetWidth"].isNumber()) o.target_width = options["targetWidth"].as<size_t>();
      if (options["targetHeight"].isNumber()) o.target_height = options["targetHeight"].as<size_t>();
      if (options["tile"].isNumber()) o.tile = options["tile"].as<size_t>();
      if (options["onProgress"].typeOf().as<std::string>() == "function") {
        const val callback = options["onProgress"];
        o.progress = [callback](size_t done, size_t total) {
          if (callback(double(done), double(total)).isTrue()) throw Cancelled();
        };
      }
      const bool raw = options["raw"].isTrue();
      const std::vector<uint8_t> px = bytes_of(pixels);
      imdn::Image in;
      in.width = size_t(width);
      in.height = size_t(height);
      in.channels = channels;
      in.data.resize(n);
      for (size_t i = 0; i < n; ++i) in.data[i] = px[i] / 255.f;
      val r = val::object();
      if (raw) {
        if (channels != 3) throw imdn::Error("raw output needs an RGB image");
        size_t oh = 0, ow = 0;
        const std::vector<float> out = upscaler_->run_rgb(in.data.data(), in.height, in.width, &oh, &ow, o.tile, o.progress);
        r.set("width", ow);
        r.set("height", oh);
        r.set("channels", 3);
        r.set("data", js_copy(out));
        return r;
      }
      if (channels == 3 && !o.target_width && !o.target_height) {
        // RGB: quantized row by row as the network makes them, so that no float copy of the
        // output is held (at x4 that is 12 of the 15 bytes per output pixel).
        const std::pair<size_t, size_t> size = upscaler_->output_size(size_t(width), size_t(height), o);
        const size_t ow = size.first, oh = size.second;
        std::vector<uint8_t> out8(ow * oh * 3);
        size_t rh = 0, rw = 0;
        upscaler_->run_rgb(in.data.data(), in.height, in.width, &rh, &rw, o.tile, o.progress,
                           [&](size_t y, size_t x0, size_t count, const float* rgb) {
                             uint8_t* d = out8.data() + (y * ow + x0) * 3;
                             for (size_t i = 0; i < count * 3; ++i) d[i] = imdn::to_u8(rgb[i]);
                           });
        r.set("width", ow);
        r.set("height", oh);
        r.set("channels", 3);
        r.set("data", js_copy(out8));
        return r;
      }
      return image_to_js(upscaler_->upscale(in, o), upscaler_->network().pool());
    } catch (const Cancelled& e) {
      val r = failure(e.what());
      r.set("cancelled", true);
      return r;
    } catch (const std::bad_alloc&) {
      return failure("out of memory: the image is too large for one WebAssembly instance; use smaller tiles");
    } catch (const std::exception& e) {
      return failure(e.what());
    }
  }

  // ---- Stages of exact tiling (src/tiled.h), one call per tile task of the worker pool.

  // RGB bytes of an input crop -> its features (body resolution), Float32Array.
  val stem(const val& pixels, int width, int height) {
    return guarded([&] {
      imdn::Network& net = upscaler_->network();
      const size_t w = size_t(width), h = size_t(height), s = net.stem_stride();
      const std::vector<uint8_t> px = bytes_of(pixels);
      if (px.size() != w * h * 3) throw imdn::Error("stem: pixel data does not match the crop");
      std::vector<float> rgb(px.size());
      for (size_t i = 0; i < px.size(); ++i) rgb[i] = px[i] / 255.f;
      std::vector<float> fea(((h + s - 1) / s) * ((w + s - 1) / s) * net.features());
      net.stage_stem(rgb.data(), h, w, fea.data());
      val r = val::object();
      r.set("data", js_copy(fea));
      return r;
    });
  }

  // A block's distillation steps over a crop of its input -> the concatenation on the core and
  // its per-channel sums and sums of squares there (Float64Array, 2 x channels).
  val blockA(int block, const val& x, int width, int height, const val& core) {
    return guarded([&] {
      imdn::Network& net = upscaler_->network();
      const size_t w = size_t(width), h = size_t(height), cc = net.cat_channels();
      check_block(block);
      const Core c = core_of(core, w, h);
      const std::vector<float> in = numbers_of<float>(x);
      if (in.size() != w * h * net.features()) throw imdn::Error("blockA: feature data does not match the crop");
      std::vector<float> cat(w * h * cc);
      net.stage_block_a(size_t(block), in.data(), h, w, cat.data());
      const std::vector<float> mine = core_rows(cat, w, c, cc);
      val r = val::object();
      if (net.has_attention()) {
        const imdn::ops::ChannelSums s = imdn::ops::channel_sums(mine.data(), c.w * c.h, cc, nullptr);
        std::vector<double> sums(s.sum);
        sums.insert(sums.end(), s.sumsq.begin(), s.sumsq.end());
        r.set("sums", js_copy(sums));
      }
      r.set("cat", js_copy(mine));
      return r;
    });
  }

  // The attention weights of a block from the sums of all tiles (count = pixels summed).
  val attention(int block, const val& sums, double count) {
    return guarded([&] {
      imdn::Network& net = upscaler_->network();
      check_block(block);
      const std::vector<double> all = numbers_of<double>(sums);
      const size_t cc = net.cat_channels();
      if (all.size() != 2 * cc) throw imdn::Error("attention: wrong number of sums");
      imdn::ops::ChannelSums s;
      s.sum.assign(all.begin(), all.begin() + long(cc));
      s.sumsq.assign(all.begin() + long(cc), all.end());
      s.count = size_t(count);
      val r = val::object();
      r.set("z", js_copy(net.stage_attention(size_t(block), s)));
      return r;
    });
  }

  // A block's pointwise rest over `pixels` pixels -> the updated x (and acc).
  val blockB(int block, const val& z, const val& cat, const val& x, const val& acc, int pixels) {
    return guarded([&] {
      imdn::Network& net = upscaler_->network();
      check_block(block);
      const size_t n = size_t(pixels), nf = net.features();
      std::vector<float> zz = z.isNull() || z.isUndefined() ? std::vector<float>() : numbers_of<float>(z);
      std::vector<float> cv = numbers_of<float>(cat), xv = numbers_of<float>(x);
      std::vector<float> av = net.has_fusion() ? numbers_of<float>(acc) : std::vector<float>();
      if (cv.size() != n * net.cat_channels() || xv.size() != n * nf || (net.has_fusion() && av.size() != n * nf) ||
          (net.has_attention() && zz.size() != net.cat_channels())) {
        throw imdn::Error("blockB: data does not match the pixel count");
      }
      net.stage_block_b(size_t(block), zz.empty() ? nullptr : zz.data(), cv.data(), xv.data(),
                        av.empty() ? nullptr : av.data(), n);
      val r = val::object();
      r.set("x", js_copy(xv));
      if (!av.empty()) r.set("acc", js_copy(av));
      return r;
    });
  }

  // The tail over a crop -> the core's output pixels (core * upsample, cut to outWidth x
  // outHeight): mode "rgb" bytes, "grey" bytes (mean of R, G, B), or "raw" RGB floats. The stem's
  // features are recomputed from `pixels`, an RGB input crop of inWidth x inHeight whose body
  // grid holds the tail's crop at (at.x, at.y).
  val tail(const val& src, const val& pixels, int in_width, int in_height, const val& at, int width, int height,
           const val& core, int out_width, int out_height, const std::string& mode) {
    return guarded([&] {
      imdn::Network& net = upscaler_->network();
      const size_t w = size_t(width), h = size_t(height), nf = net.features(), r = net.upsample();
      const size_t iw = size_t(in_width), ih = size_t(in_height), S = net.stem_stride();
      const size_t fw = (iw + S - 1) / S, fh = (ih + S - 1) / S;
      const Core c = core_of(core, w, h);
      const size_t ax = at["x"].as<size_t>(), ay = at["y"].as<size_t>();
      if (ax + w > fw || ay + h > fh) throw imdn::Error("tail: crop outside the stem's features");
      std::vector<float> s = numbers_of<float>(src);
      const std::vector<uint8_t> px = bytes_of(pixels);
      if (s.size() != w * h * nf || px.size() != iw * ih * 3) throw imdn::Error("tail: data does not match the crop");
      std::vector<float> rgb(px.size());
      for (size_t i = 0; i < px.size(); ++i) rgb[i] = px[i] / 255.f;
      std::vector<float> wide(fw * fh * nf), f(w * h * nf);
      net.stage_stem(rgb.data(), ih, iw, wide.data());
      for (size_t y = 0; y < h; ++y) std::copy_n(wide.data() + ((ay + y) * fw + ax) * nf, w * nf, f.data() + y * w * nf);
      std::vector<float> out(h * r * w * r * 3);
      net.stage_tail(s.data(), f.data(), h, w, out.data(), h * r, w * r);
      const size_t ow = std::min(size_t(out_width), c.w * r), oh = std::min(size_t(out_height), c.h * r);
      const size_t channels = mode == "grey" ? 1 : 3;
      val result = val::object();
      result.set("width", ow);
      result.set("height", oh);
      result.set("channels", channels);
      std::vector<float> mine(ow * oh * 3);
      for (size_t y = 0; y < oh; ++y) {
        std::copy_n(out.data() + ((c.y * r + y) * w * r + c.x * r) * 3, ow * 3, mine.data() + y * ow * 3);
      }
      if (mode == "raw") {
        result.set("data", js_copy(mine));
        return result;
      }
      std::vector<uint8_t> bytes(ow * oh * channels);
      for (size_t p = 0; p < ow * oh; ++p) {
        if (channels == 1) {
          bytes[p] = imdn::to_u8((mine[p * 3] + mine[p * 3 + 1] + mine[p * 3 + 2]) / 3.f);
        } else {
          for (size_t k = 0; k < 3; ++k) bytes[p * 3 + k] = imdn::to_u8(mine[p * 3 + k]);
        }
      }
      result.set("data", js_copy(bytes));
      return result;
    });
  }

  // The shared-map forms of the stages (same work; see the copying forms above).

  // Stem over an input crop whose body rect is `crop`; writes rect `core` into xMap.
  val stemInto(const val& pixels, int width, int height, const val& crop, const val& core, const val& x_map, int map_w) {
    return guarded([&] {
      imdn::Network& net = upscaler_->network();
      const size_t w = size_t(width), h = size_t(height), s = net.stem_stride();
      const Rect c = rect_of(crop), k = rect_of(core);
      const std::vector<uint8_t> px = bytes_of(pixels);
      if (px.size() != w * h * 3 || c.w != (w + s - 1) / s || c.h != (h + s - 1) / s) throw imdn::Error("stem: crop sizes disagree");
      std::vector<float> rgb(px.size());
      for (size_t i = 0; i < px.size(); ++i) rgb[i] = px[i] / 255.f;
      std::vector<float> fea(c.w * c.h * net.features());
      net.stage_stem(rgb.data(), h, w, fea.data());
      write_rect(x_map, size_t(map_w), c, k, net.features(), fea.data());
      return val::object();
    });
  }

  // A block's steps over rect `crop` of xMap; writes rect `core` of the concatenation into catMap
  // and returns its sums.
  val blockAInto(int block, const val& x_map, const val& cat_map, int map_w, const val& crop, const val& core) {
    return guarded([&] {
      imdn::Network& net = upscaler_->network();
      check_block(block);
      const size_t cc = net.cat_channels();
      const Rect c = rect_of(crop), k = rect_of(core);
      const std::vector<float> in = read_rect(x_map, size_t(map_w), c, net.features());
      std::vector<float> cat(c.w * c.h * cc);
      net.stage_block_a(size_t(block), in.data(), c.h, c.w, cat.data());
      write_rect(cat_map, size_t(map_w), c, k, cc, cat.data());
      val r = val::object();
      if (net.has_attention()) {
        const float* first = cat.data() + ((k.y - c.y) * c.w + (k.x - c.x)) * cc;
        const imdn::ops::ChannelSums s = imdn::ops::channel_sums_rect(first, k.h, k.w, c.w, cc);
        std::vector<double> sums(s.sum);
        sums.insert(sums.end(), s.sumsq.begin(), s.sumsq.end());
        r.set("sums", js_copy(sums));
      }
      return r;
    });
  }

  // A block's pointwise rest over pixels [p0, p1) of the maps, in place.
  val blockBInto(int block, const val& z, const val& cat_map, const val& x_map, const val& acc_map, int p0, int p1) {
    return guarded([&] {
      imdn::Network& net = upscaler_->network();
      check_block(block);
      const size_t a = size_t(p0), n = size_t(p1 - p0), nf = net.features(), cc = net.cat_channels();
      const Rect row{a, 0, n, 1};  // pixels [p0, p1) as one row of a map one pixel high
      std::vector<float> zz = z.isNull() || z.isUndefined() ? std::vector<float>() : numbers_of<float>(z);
      std::vector<float> cv = read_rect(cat_map, 0, row, cc), xv = read_rect(x_map, 0, row, nf);
      std::vector<float> av = net.has_fusion() ? read_rect(acc_map, 0, row, nf) : std::vector<float>();
      if (net.has_attention() && zz.size() != cc) throw imdn::Error("blockB: wrong attention weights");
      net.stage_block_b(size_t(block), zz.empty() ? nullptr : zz.data(), cv.data(), xv.data(),
                        av.empty() ? nullptr : av.data(), n);
      write_rect(x_map, 0, row, row, nf, xv.data());
      if (!av.empty()) write_rect(acc_map, 0, row, row, nf, av.data());
      return val::object();
    });
  }

  // Milliseconds per kind of operation for one pass over a width x height RGB input (after a
  // warm-up pass): [[kind, ms], ...], slowest first. For tools/bench.
  val profile(int width, int height) {
    if (!upscaler_) return failure(error_);
    try {
      std::vector<float> in(size_t(width) * size_t(height) * 3);
      for (size_t i = 0; i < in.size(); ++i) in[i] = float((i * 7919) % 251) / 250.f;
      imdn::Network& net = upscaler_->network();
      const auto [oh, ow] = net.output_size(size_t(height), size_t(width));
      std::vector<float> out(oh * ow * 3);
      net.run(in.data(), size_t(height), size_t(width), out.data());
      net.set_profiling(true);
      net.run(in.data(), size_t(height), size_t(width), out.data());
      val r = val::array();
      for (const auto& [kind, ms] : net.profile()) {
        val row = val::array();
        row.call<void>("push", kind);
        row.call<void>("push", ms);
        r.call<void>("push", row);
      }
      net.set_profiling(false);
      return r;
    } catch (const std::exception& e) {
      return failure(e.what());
    }
  }

 private:
  template <typename F>
  val guarded(const F& f) {
    if (!upscaler_) return failure(error_);
    try {
      return f();
    } catch (const std::bad_alloc&) {
      return failure("out of memory: use smaller tiles");
    } catch (const std::exception& e) {
      return failure(e.what());
    }
  }

  void check_block(int block) const {
    if (block < 0 || size_t(block) >= upscaler_->network().blocks()) throw imdn::Error("no block " + std::to_string(block));
  }

  std::unique_ptr<imdn::Upscaler> upscaler_;
  std::string error_;
};

#ifndef IMDN_NO_IMAGE_IO
// A model file (.imdn, or the authors' .pth in either format) as our format: { data, info } or
// { error }. f16: values stored as float16 (half the size).
val convert_model(const val& model_bytes, bool f16) {
  try {
    const std::vector<uint8_t> b = bytes_of(model_bytes);
    const imdn::Model m = imdn::Model::parse(b.data(), b.size());
    val r = val::object();
    r.set("data", js_copy(m.serialize(f16)));
    r.set("arch", std::string(imdn::arch_name(m.info().arch)));
    r.set("scale", m.info().scale);
    return r;
  } catch (const std::bad_alloc&) {
    return failure("out of memory reading the model");
  } catch (const std::exception& e) {
    return failure(e.what());
  }
}

val decode_image(const val& encoded, double max_pixels) {
  try {
    const std::vector<uint8_t> b = bytes_of(encoded);
    const imdn::Image img = imdn::decode_image(b.data(), b.size(), max_pixels >= 1 ? size_t(max_pixels) : imdn::kDefaultMaxInputPixels);
    val r = image_to_js(img);
    r.set("bitDepth", img.bit_depth);
    return r;
  } catch (const std::bad_alloc&) {
    return failure("out of memory decoding the image");
  } catch (const std::exception& e) {
    return failure(e.what());
  }
}

val encode_png(const val& pixels, int width, int height, int channels) {
  try {
    if (width <= 0 || height <= 0 || channels < 1 || channels > 4) throw imdn::Error("invalid image for PNG");
    imdn::Image img;
    img.width = size_t(width);
    img.height = size_t(height);
    img.channels = channels;
    const std::vector<uint8_t> px = bytes_of(pixels);
    if (px.size() != img.width * img.height * size_t(channels)) throw imdn::Error("pixel data does not match the size");
    img.data.resize(px.size());
    for (size_t i = 0; i < px.size(); ++i) img.data[i] = px[i] / 255.f;
    val r = val::object();
    r.set("data", js_copy(imdn::encode_png(img)));
    return r;
  } catch (const std::exception& e) {
    return failure(e.what());
  }
}
#endif

}  // namespace

EMSCRIPTEN_BINDINGS(imdn) {
  emscripten::class_<Engine>("Engine")
      .constructor<const val&, int>()
      .function("error", &Engine::error)
      .function("info", &Engine::info)
      .function("upscale", &Engine::upscale)
      .function("profile", &Engine::profile)
      .function("stem", &Engine::stem)
      .function("blockA", &Engine::blockA)
      .function("attention", &Engine::attention)
      .function("blockB", &Engine::blockB)
      .function("tail", &Engine::tail)
      .function("stemInto", &Engine::stemInto)
      .function("blockAInto", &Engine::blockAInto)
      .function("blockBInto", &Engine::blockBInto);
#ifndef IMDN_NO_IMAGE_IO  // the threaded module: only the main thread's instance decodes and encodes
  emscripten::function("decodeImage", &decode_image);
  emscripten::function("convertModel", &convert_model);
  emscripten::function("encodePng", &encode_png);
#endif
}
