#include "network.h"

#include <xnnpack.h>
#include <pthreadpool.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "architecture.h"
#include "ops.h"

namespace imdn {

namespace {

void check(xnn_status status, const std::string& what) {
  if (status != xnn_status_success) {
    throw Error("XNNPACK failed in " + what + " (status " + std::to_string(int(status)) + ")");
  }
}

void initialize_xnnpack() {
  static std::once_flag once;
  static xnn_status status = xnn_status_uninitialized;
  std::call_once(once, [] { status = xnn_initialize(/*allocator=*/nullptr); });
  if (status != xnn_status_success) {
    throw Error("XNNPACK could not initialize (status " + std::to_string(int(status)) +
                "); this CPU or browser may lack the SIMD instructions it needs");
  }
}

// float storage aligned for SIMD, with XNN_EXTRA_BYTES of slack that XNNPACK may read past the end.
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { std::free(data_); }
  void resize(size_t floats) {
    if (floats <= capacity_) return;
    std::free(data_);
    data_ = nullptr;
    capacity_ = 0;
    const size_t bytes = ((floats * sizeof(float) + XNN_EXTRA_BYTES + 63) / 64) * 64;
    data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (data_ == nullptr) throw Error("out of memory allocating " + std::to_string(bytes >> 20) + " MiB of feature maps");
    capacity_ = floats;
  }
  void release() { std::free(data_); data_ = nullptr; capacity_ = 0; }
  float* data() const { return data_; }

 private:
  float* data_ = nullptr;
  size_t capacity_ = 0;
};

// A convolution over output channels [o0, o1) of a ConvSpec's weights, reading input channels
// [i0, i0 + cin) of the weight tensor. Reads `in_stride`-strided pixels, writes `out_stride`-strided.
class Conv {
 public:
  Conv(const Model& model, const std::string& prefix, const ConvSpec& spec, size_t o0, size_t o1, size_t i0,
       size_t cin, size_t in_stride, size_t out_stride, bool with_bias)
      : name_(prefix + spec.name),
        kind_("conv" + std::to_string(spec.kernel) + "x" + std::to_string(spec.kernel) + (spec.stride > 1 ? "/2 " : " ") +
              std::to_string(cin) + "->" + std::to_string(o1 - o0)) {
    const Tensor& w = model.tensor(name_ + ".weight");
    const size_t k = spec.kernel, cin_all = spec.cin, cout = o1 - o0;
    // PyTorch (out, in, kh, kw) -> XNNPACK (out, kh, kw, in)
    std::vector<float> kernel(cout * k * k * cin);
    for (size_t o = 0; o < cout; ++o)
      for (size_t y = 0; y < k; ++y)
        for (size_t x = 0; x < k; ++x)
          for (size_t i = 0; i < cin; ++i)
            kernel[((o * k + y) * k + x) * cin + i] = w.data[(((o0 + o) * cin_all + i0 + i) * k + y) * k + x];
    std::vector<float> bias;
    if (spec.bias && with_bias) {
      const Tensor& b = model.tensor(name_ + ".bias");
      bias.assign(b.data.begin() + o0, b.data.begin() + o1);
    }
    const uint32_t pad = uint32_t(k / 2);
    const float out_min = spec.act == Act::kReLU ? 0.f : -INFINITY;
    check(xnn_create_convolution2d_nhwc_f32(
              /*input_padding_top=*/pad, /*input_padding_right=*/pad, /*input_padding_bottom=*/pad,
              /*input_padding_left=*/pad, /*kernel_height=*/uint32_t(k), /*kernel_width=*/uint32_t(k),
              /*subsampling_height=*/spec.stride, /*subsampling_width=*/spec.stride,
              /*dilation_height=*/1, /*dilation_width=*/1, /*groups=*/1,
              /*group_input_channels=*/cin, /*group_output_channels=*/cout,
              /*input_channel_stride=*/in_stride, /*output_channel_stride=*/out_stride, kernel.data(),
              bias.empty() ? nullptr : bias.data(), out_min, /*output_max=*/INFINITY, /*flags=*/0,
              /*weights_cache=*/nullptr, &op_),
          "creating " + name_);
  }
  ~Conv() { if (op_) xnn_delete_operator(op_); }
  Conv(const Conv&) = delete;
  Conv& operator=(const Conv&) = delete;

  // Returns the workspace bytes this size needs.
  size_t reshape(size_t h, size_t w, pthreadpool_t pool) {
    size_t workspace = 0, oh = 0, ow = 0;
    check(xnn_reshape_convolution2d_nhwc_f32(op_, /*batch_size=*/1, h, w, &workspace, &oh, &ow, pool),
          "reshaping " + name_ + " to " + std::to_string(h) + "x" + std::to_string(w));
    return workspace;
  }
  void run(const float* in, float* out, void* workspace, pthreadpool_t pool) {
    check(xnn_setup_convolution2d_nhwc_f32(op_, workspace, in, out), "setting up " + name_);
    check(xnn_run_operator(op_, pool), "running " + name_);
  }
  const std::string& kind() const { return kind_; }

 private:
  std::string name_, kind_;
  xnn_operator_t op_ = nullptr;
};

size_t out_side(size_t n, uint32_t stride) { return (n + stride - 1) / stride; }  // 3x3, pad 1

struct Step {  // one distillation step: distilled part into the concatenation, the rest onwards
  std::unique_ptr<Conv> distilled, remaining;
  size_t rem_channels = 0;
  Act act = Act::kNone;
};

struct Block {
  std::vector<Step> steps;
  std::vector<float> cca0_w, cca0_b, cca1_w, cca1_b;  // (hidden, cat), (cat, hidden)
  std::unique_ptr<Conv> fuse;
  std::unique_ptr<Conv> fusion;                       // IMDN: this block's slice of the 1x1 fusion
};

}  // namespace

struct Network::Impl {
  ModelInfo info;
  Architecture arch;
  pthreadpool_t pool = nullptr;
  std::vector<std::unique_ptr<Conv>> stem;
  std::vector<Block> blocks;
  std::unique_ptr<Conv> lr, up;
  size_t rem_max = 0;
  // Feature maps (see memory_needed for their sizes).
  Buffer in, stem_mid, fea, x[2], cat, rem[2], acc, tmp, upbuf, workspace;
  size_t h = 0, w = 0;  // input size the operators are shaped for
  uint64_t memory_limit = sizeof(size_t) < 8 ? uint64_t(3) << 30 : uint64_t(8) << 30;
  bool profiling = false;
  std::map<std::string, double> profile_ms;

  // Runs f, adding its wall time to `kind` when profiling.
  template <typename F>
  void timed(const std::string& kind, const F& f) {
    if (!profiling) {
      f();
      return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    f();
    profile_ms[kind] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  void conv(Conv& c, const float* in, float* out) {
    timed(c.kind(), [&] { c.run(in, out, workspace.data(), pool); });
  }

  Impl(const Model& model, size_t threads) : info(model.info()), arch(Architecture::of(model.info())) {
    initialize_xnnpack();
    if (threads != 1) {
      pool = pthreadpool_create(threads);  // 0 = one per core
      if (pool == nullptr) throw Error("cannot create a thread pool");
    }
    const uint32_t nf = arch.block.nf, d = arch.block.distilled, catc = arch.block.cat_channels();
    for (size_t i = 0; i < arch.stem.size(); ++i) {
      const ConvSpec& s = arch.stem[i];
      stem.push_back(std::make_unique<Conv>(model, "", s, 0, s.cout, 0, s.cin, s.cin, s.cout, true));
    }
    for (uint32_t b = 0; b < arch.blocks; ++b) {
      const std::string p = "blocks." + std::to_string(b) + ".";
      Block blk;
      size_t in_stride = nf;
      for (size_t k = 0; k < arch.block.steps.size(); ++k) {
        const ConvSpec& s = arch.block.steps[k];
        Step st;
        st.act = s.act;
        const size_t out0 = k * d;  // where this step's distilled channels go in the concatenation
        if (k + 1 == arch.block.steps.size()) {
          st.distilled = std::make_unique<Conv>(model, p, s, 0, s.cout, 0, s.cin, in_stride, catc, true);
        } else {
          st.rem_channels = s.cout - d;
          st.distilled = std::make_unique<Conv>(model, p, s, 0, d, 0, s.cin, in_stride, catc, true);
          st.remaining = std::make_unique<Conv>(model, p, s, d, s.cout, 0, s.cin, in_stride, st.rem_channels, true);
          rem_max = std::max(rem_max, st.rem_channels);
          in_stride = st.rem_channels;
        }
        (void)out0;
        blk.steps.push_back(std::move(st));
      }
      if (arch.block.cca) {
        blk.cca0_w = model.tensor(p + "cca.0.weight").data;
        blk.cca0_b = model.tensor(p + "cca.0.bias").data;
        blk.cca1_w = model.tensor(p + "cca.1.weight").data;
        blk.cca1_b = model.tensor(p + "cca.1.bias").data;
      }
      const ConvSpec& f = arch.block.fuse;
      blk.fuse = std::make_unique<Conv>(model, p, f, 0, f.cout, 0, f.cin, catc, nf, true);
      if (arch.fusion) {
        ConvSpec fs;
        fs.name = "fusion";
        fs.cin = nf * arch.blocks;
        fs.cout = nf;
        fs.kernel = 1;
        blk.fusion = std::make_unique<Conv>(model, "", fs, 0, nf, size_t(b) * nf, nf, nf, nf, /*with_bias=*/b == 0);
      }
      blocks.push_back(std::move(blk));
    }
    lr = std::make_unique<Conv>(model, "", arch.lr, 0, nf, 0, nf, nf, nf, true);
    up = std::make_unique<Conv>(model, "", arch.up, 0, arch.up.cout, 0, nf, nf, arch.up.cout, true);
  }

  ~Impl() {
    stem.clear();
    blocks.clear();
    lr.reset();
    up.reset();
    if (pool) pthreadpool_destroy(pool);
  }

  // Body resolution for an input of h x w.
  std::pair<size_t, size_t> body_size(size_t ih, size_t iw) const {
    for (const ConvSpec& s : arch.stem) {
      ih = out_side(ih, s.stride);
      iw = out_side(iw, s.stride);
    }
    return {ih, iw};
  }

  void check_size(size_t ih, size_t iw) const {
    if (ih == 0 || iw == 0) throw Error("image is empty (" + std::to_string(iw) + "x" + std::to_string(ih) + ")");
    if (ih % info.size_multiple || iw % info.size_multiple) {
      throw Error(std::string(arch_name(info.arch)) + " needs sides that are multiples of " +
                  std::to_string(info.size_multiple) + ", got " + std::to_string(iw) + "x" + std::to_string(ih));
    }
    if (ih > (1u << 20) || iw > (1u << 20)) throw Error("image side over 1048576 pixels");
    const uint64_t need = memory_needed(ih, iw);
    if (need > memory_limit) {
      throw Error("a " + std::to_string(iw) + "x" + std::to_string(ih) + " input needs " + std::to_string(need >> 20) +
                  " MiB of feature maps, over the " + std::to_string(memory_limit >> 20) + " MiB limit");
    }
  }

  uint64_t memory_needed(size_t ih, size_t iw) const {
    uint64_t bh = ih, bw = iw;
    for (const ConvSpec& s : arch.stem) {
      bh = (bh + s.stride - 1) / s.stride;
      bw = (bw + s.stride - 1) / s.stride;
    }
    const uint64_t P = bh * bw, nf = arch.block.nf, r = arch.upsample;
    uint64_t mid = 0;
    if (arch.stem.size() > 1) {
      const uint64_t st = arch.stem[0].stride;
      mid = ((ih + st - 1) / st) * ((iw + st - 1) / st) * arch.stem[0].cout;
    }
    const uint64_t floats = uint64_t(ih) * iw * 3 + mid +
                            P * (nf * (arch.fusion ? 5 : 3) + arch.block.cat_channels() + 2 * rem_max) + P * 3 * r * r;
    return floats * sizeof(float);
  }

  void reshape(size_t ih, size_t iw) {
    if (ih == h && iw == w) return;
    h = w = 0;
    const auto [bh, bw] = body_size(ih, iw);
    const size_t P = bh * bw, nf = arch.block.nf;
    size_t ws = 0;
    size_t sh = ih, sw = iw;
    for (auto& c : stem) {
      ws = std::max(ws, c->reshape(sh, sw, pool));
      const ConvSpec& s = arch.stem[&c - &stem[0]];
      sh = out_side(sh, s.stride);
      sw = out_side(sw, s.stride);
    }
    for (auto& blk : blocks) {
      for (auto& st : blk.steps) {
        ws = std::max(ws, st.distilled->reshape(bh, bw, pool));
        if (st.remaining) ws = std::max(ws, st.remaining->reshape(bh, bw, pool));
      }
      ws = std::max(ws, blk.fuse->reshape(bh, bw, pool));
      if (blk.fusion) ws = std::max(ws, blk.fusion->reshape(bh, bw, pool));
    }
    ws = std::max(ws, lr->reshape(bh, bw, pool));
    ws = std::max(ws, up->reshape(bh, bw, pool));

    in.resize(ih * iw * 3);
    if (arch.stem.size() > 1) {
      stem_mid.resize(out_side(ih, arch.stem[0].stride) * out_side(iw, arch.stem[0].stride) * arch.stem[0].cout);
    }
    fea.resize(P * nf);
    x[0].resize(P * nf);
    x[1].resize(P * nf);
    cat.resize(P * arch.block.cat_channels());
    rem[0].resize(P * rem_max);
    rem[1].resize(P * rem_max);
    if (arch.fusion) {
      acc.resize(P * nf);
      tmp.resize(P * nf);
    }
    upbuf.resize(P * arch.up.cout);
    workspace.resize(ws / sizeof(float) + 1);
    h = ih;
    w = iw;
  }

  void run_block(Block& blk, const float* input, float* output, size_t P) {
    const size_t d = arch.block.distilled, catc = arch.block.cat_channels();
    const float* step_in = input;
    for (size_t k = 0; k < blk.steps.size(); ++k) {
      Step& st = blk.steps[k];
      float* cat_slice = cat.data() + k * d;
      conv(*st.distilled, step_in, cat_slice);
      if (st.remaining) {
        float* r = rem[k % 2].data();
        conv(*st.remaining, step_in, r);
        if (st.act == Act::kLeakyReLU) {
          timed("leaky_relu", [&] {
            ops::leaky_relu(r, P, st.rem_channels, st.rem_channels, pool);
            ops::leaky_relu(cat_slice, P, d, catc, pool);
          });
        }
        step_in = r;
      } else if (st.act == Act::kLeakyReLU) {
        timed("leaky_relu", [&] { ops::leaky_relu(cat_slice, P, catc - k * d, catc, pool); });
      }
    }
    if (arch.block.cca) {
      std::vector<double> mean, stdev;
      timed("cca_stats", [&] { ops::channel_stats(cat.data(), P, catc, pool, &mean, &stdev); });
      const std::vector<float> z = ops::cca_weights(mean, stdev, blk.cca0_w, blk.cca0_b, blk.cca1_w, blk.cca1_b);
      timed("cca_scale", [&] { ops::scale_channels(cat.data(), P, catc, z.data(), pool); });
    }
    conv(*blk.fuse, cat.data(), output);
    timed("add", [&] { ops::add(output, input, P * arch.block.nf, pool); });
  }

  void run(const float* input, size_t ih, size_t iw, float* output) {
    check_size(ih, iw);
    reshape(ih, iw);
    const auto [bh, bw] = body_size(ih, iw);
    const size_t P = bh * bw, nf = arch.block.nf;
    const float range = info.input_range;
    timed("input", [&] { ops::scale_copy(input, in.data(), ih * iw * 3, range, pool); });

    // Stem
    const float* s_in = in.data();
    size_t sh = ih, sw = iw;
    for (size_t i = 0; i < stem.size(); ++i) {
      float* s_out = i + 1 == stem.size() ? fea.data() : stem_mid.data();
      conv(*stem[i], s_in, s_out);
      sh = out_side(sh, arch.stem[i].stride);
      sw = out_side(sw, arch.stem[i].stride);
      if (arch.stem[i].act == Act::kLeakyReLU) {
        timed("leaky_relu", [&] { ops::leaky_relu(s_out, sh * sw, arch.stem[i].cout, arch.stem[i].cout, pool); });
      }
      s_in = s_out;
    }
    // Body
    const float* b_in = fea.data();
    for (size_t b = 0; b < blocks.size(); ++b) {
      float* b_out = x[b % 2].data();
      run_block(blocks[b], b_in, b_out, P);
      if (blocks[b].fusion) {
        if (b == 0) {
          conv(*blocks[b].fusion, b_out, acc.data());
        } else {
          conv(*blocks[b].fusion, b_out, tmp.data());
          timed("add", [&] { ops::add(acc.data(), tmp.data(), P * nf, pool); });
        }
      }
      b_in = b_out;
    }
    if (arch.fusion) {
      timed("leaky_relu", [&] { ops::leaky_relu(acc.data(), P, nf, nf, pool); });
      b_in = acc.data();
    }
    float* lr_out = x[blocks.size() % 2].data();  // the buffer the last block did not write
    conv(*lr, b_in, lr_out);
    timed("add", [&] { ops::add(lr_out, fea.data(), P * nf, pool); });
    conv(*up, lr_out, upbuf.data());
    const std::pair<size_t, size_t> out_size = output_size(ih, iw);
    const size_t uh = bh, uw = bw;
    timed("pixel_shuffle", [&] {
      ops::pixel_shuffle(upbuf.data(), uh, uw, arch.upsample, output, out_size.first, out_size.second, 1.f / range, pool);
    });
  }

  std::pair<size_t, size_t> output_size(size_t ih, size_t iw) const {
    return {ih * info.scale, iw * info.scale};
  }
};

Network::Network(const Model& model, size_t threads) : impl_(std::make_unique<Impl>(model, threads)) {}
Network::~Network() = default;
const ModelInfo& Network::info() const { return impl_->info; }
std::pair<size_t, size_t> Network::output_size(size_t h, size_t w) const { return impl_->output_size(h, w); }
uint64_t Network::memory_needed(size_t h, size_t w) const { return impl_->memory_needed(h, w); }
void Network::set_memory_limit(uint64_t bytes) { impl_->memory_limit = bytes; }
uint64_t Network::memory_limit() const { return impl_->memory_limit; }
void Network::set_profiling(bool on) {
  impl_->profiling = on;
  impl_->profile_ms.clear();
}
std::vector<std::pair<std::string, double>> Network::profile() const {
  std::vector<std::pair<std::string, double>> out(impl_->profile_ms.begin(), impl_->profile_ms.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}
void Network::run(const float* input, size_t h, size_t w, float* output) { impl_->run(input, h, w, output); }

}  // namespace imdn
