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

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "architecture.h"
#include "image.h"
#include "model.h"
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

val failure(const std::string& message) {
  val r = val::object();
  r.set("error", message);
  return r;
}

class Engine {
 public:
  explicit Engine(const val& model_bytes) {
    try {
      const std::vector<uint8_t> b = bytes_of(model_bytes);
      upscaler_ = std::make_unique<imdn::Upscaler>(imdn::Model::parse(b.data(), b.size()), /*threads=*/1);
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
    r.set("alignment", imdn::Architecture::of(i).stem_stride());
    return r;
  }

  // pixels: width*height*channels 8-bit values (channels 1-4). options: { targetWidth,
  // targetHeight, raw }. raw: the network's unclamped RGB floats (Float32Array) instead of 8-bit.
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
        const std::vector<float> out = upscaler_->run_rgb(in.data.data(), in.height, in.width, &oh, &ow);
        r.set("width", ow);
        r.set("height", oh);
        r.set("channels", 3);
        r.set("data", js_copy(out));
        return r;
      }
      const imdn::Image out = upscaler_->upscale(in, o);
      std::vector<uint8_t> bytes(out.data.size());
      for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = imdn::to_u8(out.data[i]);
      r.set("width", out.width);
      r.set("height", out.height);
      r.set("channels", out.channels);
      r.set("data", js_copy(bytes));
      return r;
    } catch (const std::bad_alloc&) {
      return failure("out of memory: the image is too large for one WebAssembly instance; use smaller tiles");
    } catch (const std::exception& e) {
      return failure(e.what());
    }
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
  std::unique_ptr<imdn::Upscaler> upscaler_;
  std::string error_;
};

val decode_image(const val& encoded) {
  try {
    const std::vector<uint8_t> b = bytes_of(encoded);
    const imdn::Image img = imdn::decode_image(b.data(), b.size());
    std::vector<uint8_t> px(img.data.size());
    for (size_t i = 0; i < px.size(); ++i) px[i] = imdn::to_u8(img.data[i]);
    val r = val::object();
    r.set("width", img.width);
    r.set("height", img.height);
    r.set("channels", img.channels);
    r.set("bitDepth", img.bit_depth);
    r.set("data", js_copy(px));
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

}  // namespace

EMSCRIPTEN_BINDINGS(imdn) {
  emscripten::class_<Engine>("Engine")
      .constructor<const val&>()
      .function("error", &Engine::error)
      .function("info", &Engine::info)
      .function("upscale", &Engine::upscale)
      .function("profile", &Engine::profile);
  emscripten::function("decodeImage", &decode_image);
  emscripten::function("encodePng", &encode_png);
}
