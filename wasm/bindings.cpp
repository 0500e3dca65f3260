// Embind surface of the WebAssembly build: a small, JS-shaped API over the C++ core.
//
//   const engine = new Module.Engine(modelBytes, threads);
//   engine.info();                    // { arch, scale, ... } or { error }: the model was refused
//   const out = engine.upscale(pixels, w, h, channels, { raw: false, tileSize: 256 });
//   // { width, height, channels, data } or { error }; data is a fresh JS-owned array
//   engine.delete();
// and, for the pool of workers, a Job planned here whose units run in other instances (below).
//
// Failures never throw across the boundary: they come back as { error: message } and the JS
// wrapper (wasm/engine.js) turns them into Error objects.
#include <emscripten/bind.h>
#include <emscripten/em_js.h>
#include <emscripten/emscripten.h>
#include <emscripten/val.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "architecture.h"
#include "image.h"
#include "job.h"
#include "loader.h"
#include "model.h"
#include "network.h"
#include "ops.h"

using emscripten::val;

// A job's external memory (imdn::ExternalStore, maps.h): ArrayBuffers in Module.imdnBuffers by id.
// Maps are resizable where the engine has them, so that release() gives their pages back at once
// (resize(0)) instead of at some later collection; the output is a plain buffer, the caller's.
// Called only from the thread that runs the job (the pool's threads copy inside this instance).
// clang-format off
EM_JS(int, imdn_buffer_new, (double bytes, uint32_t fill, int result), {
  const table = Module['imdnBuffers'] || (Module['imdnBuffers'] = new Map());
  let b;
  try {
    b = !result && ArrayBuffer.prototype.resize ? new ArrayBuffer(bytes, { maxByteLength: bytes }) : new ArrayBuffer(bytes);
  } catch (e) {
    return -1;
  }
  if (fill) new Uint32Array(b, 0, Math.floor(bytes / 4)).fill(fill >>> 0);
  const id = (Module['imdnBufferId'] = (Module['imdnBufferId'] || 0) + 1);
  table.set(id, { b, bytes, view: new Uint8Array(b) });
  Module['imdnExternalBytes'] = (Module['imdnExternalBytes'] || 0) + bytes;
  Module['imdnExternalPeak'] = Math.max(Module['imdnExternalPeak'] || 0, Module['imdnExternalBytes']);
  return id;
});
EM_JS(void, imdn_buffer_free, (int id), {
  const table = Module['imdnBuffers'];
  const e = table && table.get(id);
  if (!e) return;
  table.delete(id);
  Module['imdnExternalBytes'] -= e.bytes;
  if (e.b.resizable) e.b.resize(0);
});
// (Rows through subarrays of one view: a new Uint8Array on a resizable buffer for each row copied
// at a third of the speed.)
EM_JS(void, imdn_buffer_copy, (int id, double offset, double row, double stride, double rows, void* at, int into_heap), {
  const outside = Module['imdnBuffers'].get(id).view;
  const heap = new Uint8Array(wasmMemory.buffer);
  const p = at >>> 0;
  for (let i = 0, o = offset; i < rows; i++, o += stride) {
    if (into_heap) heap.set(outside.subarray(o, o + row), p + i * row);
    else outside.set(heap.subarray(p + i * row, p + (i + 1) * row), o);
  }
});
// clang-format on

namespace {

class JsStore final : public imdn::ExternalStore {
 public:
  int allocate(uint64_t bytes, uint32_t fill, bool result) override {
    return imdn_buffer_new(double(bytes), fill, result ? 1 : 0);
  }
  void release(int id) override { imdn_buffer_free(id); }
  void read(int id, uint64_t offset, size_t row, uint64_t stride, size_t rows, void* p) const override {
    imdn_buffer_copy(id, double(offset), double(row), double(stride), double(rows), p, 1);
  }
  void write(int id, uint64_t offset, size_t row, uint64_t stride, size_t rows, const void* p) override {
    imdn_buffer_copy(id, double(offset), double(row), double(stride), double(rows), const_cast<void*>(p), 0);
  }
};
JsStore js_store;

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

#ifndef IMDN_NO_IMAGE_IO  // (the threaded module does not decode)
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
#endif

val failure(const std::string& message) {
  val r = val::object();
  r.set("error", message);
  return r;
}

// Thrown from a progress callback that asks to stop.
struct Cancelled : imdn::Error {
  Cancelled() : imdn::Error("cancelled") {}
};

// Runs f, turning every failure into { error } (and a stop asked by a callback into
// { error: 'cancelled', cancelled: true }): nothing throws across the boundary.
template <typename F>
val guarded(const F& f) {
  try {
    return f();
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

val rect_to_js(const imdn::Rect& r) {
  if (r.empty()) return val::null();
  val o = val::object();
  o.set("x", r.x);
  o.set("y", r.y);
  o.set("width", r.w);
  o.set("height", r.h);
  return o;
}

val memory_to_js(const imdn::JobMemory& m, size_t stem_stride) {
  val r = val::object();
  r.set("bytes", double(m.bytes));
  r.set("limit", double(m.limit));
  r.set("fits", m.fits);
  r.set("maps", std::string(m.map_bits == 16 ? "float16" : "float32"));
  r.set("recompute", m.recompute);
  r.set("streamed", m.streamed);
  r.set("tileSize", m.tile * stem_stride);
  if (m.float32_bytes) r.set("float32Bytes", double(m.float32_bytes));
  if (!m.fits) r.set("why", m.why);
  return r;
}

// The job's output, or the rectangle r of it: { width, height, channels, data } with RGBA bytes
// (Uint8ClampedArray) or, raw, RGB floats (Float32Array).
val output_to_js(const imdn::Job& job, bool raw, const imdn::Rect* r = nullptr) {
  const size_t C = raw ? 3 : 4, W = job.width();
  const imdn::Rect all{0, 0, job.height(), job.width()};
  const imdn::Rect& k = r ? *r : all;
  val o = val::object();
  o.set("width", k.w);
  o.set("height", k.h);
  o.set("channels", C);
  auto copy = [&](const auto* p) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(p)>>;
    if (k.w == W) return val(emscripten::typed_memory_view(k.h * W * C, p + k.y * W * C)).call<val>("slice");
    std::vector<T> part(k.w * k.h * C);
    for (size_t y = 0; y < k.h; ++y) std::copy_n(p + ((k.y + y) * W + k.x) * C, k.w * C, part.data() + y * k.w * C);
    return js_copy(part);
  };
  if (raw) {
    o.set("data", copy(job.floats().data()));
  } else if (job.output_buffer() >= 0 && !r) {
    // Outside the instance already: the caller's as it is, no copy.
    const val buffer = val::module_property("imdnBuffers").call<val>("get", job.output_buffer())["b"];
    o.set("data", val::global("Uint8ClampedArray").new_(buffer));
  } else if (job.output_buffer() >= 0) {
    std::vector<uint8_t> part(k.w * k.h * C);
    job.read_rgba8(k, part.data());
    o.set("data", val::global("Uint8ClampedArray").new_(js_copy(part)["buffer"]));
  } else {
    val bytes = copy(job.rgba8().data());
    o.set("data", val::global("Uint8ClampedArray").new_(bytes["buffer"]));
  }
  return o;
}

// A unit straight from an encoded JS Uint8Array into its vectors, and back: one copy per array
// each way (an intermediate byte buffer would double the copies, and units carry whole maps).
imdn::UnitData unit_from_js(const val& bytes) {
  const size_t size = bytes["length"].as<size_t>();
  std::vector<uint8_t> prefix(std::min(size, imdn::UnitData::kPrefix));
  val(emscripten::typed_memory_view(prefix.size(), prefix.data()))
      .call<void>("set", bytes.call<val>("subarray", 0, prefix.size()));
  prefix.resize(imdn::UnitData::kPrefix);  // (too short: read_prefix refuses it by `size`)
  imdn::UnitData d = imdn::UnitData::read_prefix(prefix.data(), size);
  size_t at = imdn::UnitData::kPrefix;
  for (auto& v : d.a) {
    const size_t n = v.size() * sizeof(float);
    if (n) {
      val(emscripten::typed_memory_view(n, reinterpret_cast<uint8_t*>(v.data())))
          .call<void>("set", bytes.call<val>("subarray", at, at + n));
    }
    at += n;
  }
  return d;
}

// `into`: a Uint8Array to write into when it is large enough (returned as its first bytes), else
// a new one is made. Reusing buffers matters: a fresh large ArrayBuffer costs page faults and
// zeroing, several times the copy into a used one.
val unit_to_js(const imdn::UnitData& d, const val& into) {
  const size_t n = d.encoded_size();
  const bool bytes =
      val::global("ArrayBuffer").call<bool>("isView", into) && into["BYTES_PER_ELEMENT"].strictlyEquals(val(1));
  val out =
      bytes && into["length"].as<size_t>() >= n ? into.call<val>("subarray", 0, n) : val::global("Uint8Array").new_(n);
  std::vector<uint8_t> prefix(imdn::UnitData::kPrefix);
  d.write_prefix(prefix.data());
  out.call<void>("set", val(emscripten::typed_memory_view(prefix.size(), prefix.data())), 0);
  size_t at = imdn::UnitData::kPrefix;
  for (const auto& v : d.a) {
    const size_t n = v.size() * sizeof(float);
    if (n) out.call<void>("set", val(emscripten::typed_memory_view(n, reinterpret_cast<const uint8_t*>(v.data()))), at);
    at += n;
  }
  return out;
}

class Engine;

// { raw, tileSize (input pixels), exact, minTiles, targetWidth, targetHeight, memoryLimit, mapBits,
// recompute } -> JobOptions.
imdn::JobOptions job_options(const val& options, const imdn::Network& net) {
  imdn::JobOptions o;
  auto number = [&](const char* key, size_t* to) {
    const val v = options[key];
    if (v.isUndefined() || v.isNull()) return;
    const double d = v.isNumber() ? v.as<double>() : -1;
    if (!(d >= 0 && d <= double(1u << 30)) || d != double(size_t(d)))
      throw imdn::Error(std::string(key) + " must be a non-negative integer");
    *to = size_t(d);
  };
  size_t tile_px = 0;
  number("tileSize", &tile_px);
  number("minTiles", &o.min_tiles);
  number("targetWidth", &o.target_width);
  number("targetHeight", &o.target_height);
  if (tile_px) o.tile = std::max<size_t>(8, (tile_px + net.stem_stride() / 2) / net.stem_stride());
  const val limit = options["memoryLimit"];
  if (!limit.isUndefined() && !limit.isNull()) {
    const double d = limit.isNumber() ? limit.as<double>() : -1;
    if (!(d >= 1 && d <= 9007199254740992.0) || d != double(uint64_t(d)))
      throw imdn::Error("memoryLimit must be a positive number of bytes");
    o.memory_limit = uint64_t(d);
  }
  // (For tests and benchmarks, not the package's options: the maps' precision, 16 or 32, and
  // recomputed blocks, -1 never, 1 always; plan.h.)
  const val bits = options["mapBits"], recompute = options["recompute"];
  if (bits.isNumber()) o.map_bits = bits.as<int>();
  if (recompute.isNumber()) o.recompute = recompute.as<int>();
  // (executor: 'instance' where this instance runs the whole job, whose blocks may then stream;
  // else a pool's workers run its units: plan.h.)
  const val executor = options["executor"];
  o.executor = executor.isString() && executor.as<std::string>() == "instance" ? imdn::Executor::kInstance
                                                                               : imdn::Executor::kUnits;
  // (externalMemory: false keeps float16 maps and the output inside the instance; for tests.)
  if (!options["externalMemory"].isFalse()) o.external = &js_store;
  o.raw = options["raw"].isTrue();
  o.exact = !options["exact"].isFalse();
  o.rgba8 = !o.raw;
  return o;
}

// The Image of width*height*channels 8-bit values, checked.
imdn::Image image_of(const val& pixels, int width, int height, int channels) {
  if (width <= 0 || height <= 0)
    throw imdn::Error("image is empty (" + std::to_string(width) + "x" + std::to_string(height) + ")");
  if (channels < 1 || channels > 4) throw imdn::Error("channels must be 1 to 4");
  const size_t n = size_t(width) * size_t(height) * size_t(channels);
  if (pixels["length"].as<size_t>() != n) {
    throw imdn::Error("pixel data has " + std::to_string(pixels["length"].as<size_t>()) + " values; " +
                      std::to_string(width) + "x" + std::to_string(height) + "x" + std::to_string(channels) +
                      " needs " + std::to_string(n));
  }
  const std::vector<uint8_t> px = bytes_of(pixels);
  imdn::Image in;
  in.width = size_t(width);
  in.height = size_t(height);
  in.channels = channels;
  in.data.resize(n);
  for (size_t i = 0; i < n; ++i) in.data[i] = px[i] / 255.f;
  return in;
}

// One model in one instance: what the main thread validates the model with and plans jobs on,
// and what each worker runs (whole jobs, or units of a job planned elsewhere).
class Engine {
 public:
  // threads: 1, or, in the threaded module (dist/imdn-mt.*), how many threads share each
  // operator: this one and threads - 1 pthreads from the pool started with the module.
  Engine(const val& model_bytes, int threads) {
    try {
      const std::vector<uint8_t> b = bytes_of(model_bytes);
      net_ = std::make_unique<imdn::Network>(imdn::load_model(b.data(), b.size()), size_t(std::max(1, threads)));
    } catch (const std::exception& e) {
      error_ = e.what();
    }
  }

  // The model's public facts, or { error } when the model was refused.
  val info() const {
    if (!net_) return failure(error_);
    const imdn::ModelInfo& i = net_->info();
    val r = val::object();
    r.set("arch", std::string(imdn::arch_name(i.arch)));
    r.set("nf", i.nf);
    r.set("blocks", i.blocks);
    r.set("scale", i.scale);
    r.set("upsample", i.upsample);
    r.set("inputRange", i.input_range);
    r.set("receptiveRadius", i.receptive_radius);
    r.set("sizeMultiple", i.size_multiple);
    r.set("alignment", net_->stem_stride());
    return r;
  }

  // A whole image, here: pixels (width*height*channels bytes, 1-4 channels) and options as for a
  // Job, plus onProgress(done, total, tile, tilePixels, tiles) after each unit (tile: the output
  // rectangle it finished, or null; tilePixels: that rectangle's output when
  // options.progressPixels, and then the result's data is null: the tiles were the output);
  // returning true stops the work ({ error: 'cancelled', cancelled: true }).
  val upscale(const val& pixels, int width, int height, int channels, const val& options) {
    return guarded([&] {
      need_model();
      const imdn::JobOptions o = job_options(options, *net_);
      imdn::Job job(*net_, image_of(pixels, width, height, channels), o);
      const val callback = options["onProgress"];
      const bool with_pixels = options["progressPixels"].isTrue();
      std::function<void(size_t, size_t, const imdn::Rect&)> progress;
      if (callback.typeOf().as<std::string>() == "function") {
        progress = [&](size_t done, size_t total, const imdn::Rect& r) {
          const val tile = rect_to_js(r);
          const val px = with_pixels && !r.empty() ? output_to_js(job, o.raw, &r)["data"] : val::null();
          if (callback(double(done), double(total), tile, px, double(job.tiles())).isTrue()) throw Cancelled();
        };
      }
      job.run(progress);
      // With the tiles' pixels sent as they finished, the caller has the output already: no
      // second image-sized copy.
      val out = with_pixels && progress ? val::object() : output_to_js(job, o.raw);
      if (with_pixels && progress) {
        out.set("width", job.width());
        out.set("height", job.height());
        out.set("channels", o.raw ? 3 : 4);
        out.set("data", val::null());
      }
      out.set("memory", memory_to_js(job.memory(), net_->stem_stride()));
      return out;
    });
  }

  // One unit of a job planned elsewhere: its encoded inputs (Job.gather) -> { data } encoded
  // outputs (for Job.scatter), in the unit's own bytes where they fit.
  val run(const val& unit) {
    return guarded([&] {
      need_model();
      val r = val::object();
      // The results go into the unit's own bytes where they fit (read in full before it runs).
      r.set("data", unit_to_js(imdn::run_unit(*net_, unit_from_js(unit)), unit));
      return r;
    });
  }

  // Milliseconds per kind of operation for one pass over a width x height RGB input (after a
  // warm-up pass), slowest first, and the pass's multiply-accumulates: { ops: [[kind, ms], ...],
  // macs }. For tools/bench.
  // With options (as for upscale): the job upscale would run, RGBA out, and its wall time
  // (`wall`: what the operations leave out is the plan's own work: copies, sums).
  val profile(int width, int height, const val& options) {
    return guarded([&] {
      need_model();
      if (width <= 0 || height <= 0) throw imdn::Error("profile needs a size");
      std::vector<float> in(size_t(width) * size_t(height) * 3);
      for (size_t i = 0; i < in.size(); ++i) in[i] = float((i * 7919) % 251) / 250.f;
      const auto [oh, ow] = net_->output_size(size_t(height), size_t(width));
      std::vector<float> out(oh * ow * 3);
      // (A job's input: the same pixels as 8-bit values, as the package's images are.)
      imdn::Image image;
      if (!options.isUndefined()) {
        image.width = size_t(width);
        image.height = size_t(height);
        image.channels = 3;
        image.data = in;
        for (float& v : image.data) v = float(imdn::to_u8(v)) / 255.f;
      }
      double wall = 0;
      auto pass = [&] {
        const auto t0 = std::chrono::steady_clock::now();
        if (options.isUndefined()) {
          imdn::run_network(*net_, in.data(), size_t(height), size_t(width), out.data());
        } else {
          imdn::Job job(*net_, image, job_options(options, *net_));
          job.run();
        }
        wall = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      };
      pass();
      net_->set_profiling(true);
      pass();
      val ops = val::array();
      for (const auto& [kind, ms] : net_->profile()) {
        val row = val::array();
        row.call<void>("push", kind);
        row.call<void>("push", ms);
        ops.call<void>("push", row);
      }
      net_->set_profiling(false);
      val r = val::object();
      r.set("ops", ops);
      r.set("macs", double(net_->architecture().macs(size_t(height), size_t(width))));
      r.set("wall", wall);
      return r;
    });
  }

  imdn::Network& network() {
    need_model();
    return *net_;
  }

 private:
  void need_model() const {
    if (!net_) throw imdn::Error(error_);
  }

  std::unique_ptr<imdn::Network> net_;
  std::string error_;
};

// A job planned in this instance whose units run anywhere (the pool of workers, wasm/core.js):
//   const job = new Module.Job(engine, pixels, width, height, channels, options);
//   job.plan()           -> { phases: [{ units, here }], units, tiles, width, height, memory }
//                           | { error }; memory: { bytes, limit, fits, maps, recompute, tileSize,
//                           float32Bytes? } (what the job holds at most at once, and how)
//   new Module.Job(engine, null, width, height, channels, options).plan()
//                        -> { memory } of the plan such an image would get (with alpha: a
//                           translucent one), planned without pixels and refused by nothing
//   job.gather(i, into?) -> { data: Uint8Array }      unit i's inputs, for engine.run elsewhere
//                           (written into `into`, a Uint8Array, when they fit)
//   job.scatter(i, data) -> { tile: rect | null }     its outputs back; the rect it finished
//   job.scatter(i)       -> the same, unit i run here (phases marked `here`: pointwise, cheaper
//                           in place on the maps than moved to a worker and back)
//   job.result(rect?)    -> { width, height, channels, data } the output, or a rectangle of it
class Job {
 public:
  Job(Engine& engine, const val& pixels, int width, int height, int channels, const val& options) {
    try {
      imdn::Network& net = engine.network();
      const imdn::JobOptions o = job_options(options, net);
      raw_ = o.raw;
      stride_ = net.stem_stride();
      if (pixels.isNull()) {
        if (width <= 0 || height <= 0) throw imdn::Error("image is empty");
        estimate_ = imdn::Job::estimate(net, size_t(width), size_t(height), channels, o);
        return;
      }
      job_ = std::make_unique<imdn::Job>(net, image_of(pixels, width, height, channels), o);
    } catch (const std::bad_alloc&) {
      error_ = "out of memory: the image is too large for one WebAssembly instance";
    } catch (const std::exception& e) {
      error_ = e.what();
    }
  }

  val plan() const {
    if (!job_ && error_.empty()) {
      val r = val::object();
      r.set("memory", memory_to_js(estimate_, stride_));
      return r;
    }
    if (!job_) return failure(error_);
    val phases = val::array();
    for (const auto& p : job_->phases()) {
      val ph = val::object();
      ph.set("units", p.count);
      ph.set("here", p.pointwise);
      phases.call<void>("push", ph);
    }
    val r = val::object();
    r.set("phases", phases);
    r.set("units", job_->units());
    r.set("tiles", job_->tiles());
    r.set("width", job_->width());
    r.set("height", job_->height());
    r.set("memory", memory_to_js(job_->memory(), stride_));
    return r;
  }

  val gather(int i, const val& into) {
    return guarded([&] {
      check(i);
      val r = val::object();
      r.set("data", unit_to_js(job_->gather(size_t(i)), into));
      return r;
    });
  }

  val scatter(int i, const val& data) {
    return guarded([&] {
      check(i);
      const bool here = data.isUndefined() || data.isNull();
      const imdn::Rect done = here ? job_->run_here(size_t(i)) : job_->scatter(size_t(i), unit_from_js(data));
      val r = val::object();
      r.set("tile", rect_to_js(done));
      return r;
    });
  }

  val result(const val& rect) const {
    return guarded([&] {
      check(0);
      if (rect.isUndefined() || rect.isNull()) return output_to_js(*job_, raw_);
      const imdn::Rect r{rect["y"].as<size_t>(), rect["x"].as<size_t>(), rect["height"].as<size_t>(),
                         rect["width"].as<size_t>()};
      if (r.empty() || r.y + r.h > job_->height() || r.x + r.w > job_->width())
        throw imdn::Error("rectangle outside the output");
      return output_to_js(*job_, raw_, &r);
    });
  }

 private:
  void check(int i) const {
    if (!job_) throw imdn::Error(error_.empty() ? "a job planned without pixels cannot run" : error_);
    if (i < 0 || size_t(i) >= job_->units()) throw imdn::Error("no unit " + std::to_string(i));
  }

  std::unique_ptr<imdn::Job> job_;
  std::string error_;
  bool raw_ = false;
  size_t stride_ = 1;
  imdn::JobMemory estimate_;
};

#ifndef IMDN_NO_IMAGE_IO
// A model file (.imdn, or the authors' .pth in either format) as our format: { data, info } or
// { error }. f16: values stored as float16 (half the size).
val convert_model(const val& model_bytes, bool f16) {
  try {
    const std::vector<uint8_t> b = bytes_of(model_bytes);
    const imdn::Model m = imdn::load_model(b.data(), b.size());
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
    const imdn::Image img =
        imdn::decode_image(b.data(), b.size(), max_pixels >= 1 ? size_t(max_pixels) : imdn::kDefaultMaxInputPixels);
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

// Eight methods in all: an engine (info, upscale, run, profile) and a job (plan, gather, scatter,
// result); options travel as one object.
EMSCRIPTEN_BINDINGS(imdn) {
  emscripten::class_<Engine>("Engine")
      .constructor<const val&, int>()
      .function("info", &Engine::info)
      .function("upscale", &Engine::upscale)
      .function("run", &Engine::run)
      .function("profile", &Engine::profile);
  emscripten::class_<Job>("Job")
      .constructor<Engine&, const val&, int, int, int, const val&>()
      .function("plan", &Job::plan)
      .function("gather", &Job::gather)
      .function("scatter", &Job::scatter)
      .function("result", &Job::result);
#ifndef IMDN_NO_IMAGE_IO  // the threaded module: only the main thread's instance decodes and encodes
  emscripten::function("decodeImage", &decode_image);
  emscripten::function("convertModel", &convert_model);
  emscripten::function("encodePng", &encode_png);
#endif
}
