#include "network.h"

#include <pthreadpool.h>
#include <xnnpack.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "architecture.h"
#include "buffer.h"
#include "ops.h"
#include "winograd.h"

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

// Winograd for 3x3 stride-1 convolutions of 8 or more input channels: the stem's 3 gain nothing
// from it (products 3 long; XNNPACK's direct kernel is faster: docs/kernels.md), and a direct convolution's
// outputs depend on their receptive field only, which keeps the plan's halos valid.
bool winograd_fits(const ConvSpec& spec, size_t cin) { return spec.kernel == 3 && spec.stride == 1 && cin >= 8; }

// A convolution over output channels [o0, o1) of a ConvSpec's weights, reading input channels
// [i0, i0 + cin) of the weight tensor. Reads `in_stride`-strided pixels, writes `out_stride`-strided.
class Conv {
 public:
  Conv(const Model& model, const std::string& prefix, const ConvSpec& spec, size_t o0, size_t o1, size_t i0, size_t cin,
       size_t in_stride, size_t out_stride, bool with_bias, bool winograd)
      : name_(prefix + spec.name),
        kind_("conv" + std::to_string(spec.kernel) + "x" + std::to_string(spec.kernel) +
              (spec.stride > 1 ? "/2 " : " ") + std::to_string(cin) + "->" + std::to_string(o1 - o0)) {
    const Tensor& w = model.tensor(name_ + ".weight");
    const size_t k = spec.kernel, cin_all = spec.cin, cout = o1 - o0;
    in_stride_ = in_stride;
    out_stride_ = out_stride;
    if (winograd && winograd_fits(spec, cin)) {
      const float* b = spec.bias && with_bias ? model.tensor(name_ + ".bias").data.data() : nullptr;
      winograd_ = std::make_unique<WinogradConv3x3>(w.data.data(), b, spec.cout, cin_all, o0, cout, i0, cin,
                                                    spec.act == Act::kReLU);
      if (spec.act == Act::kLeakyReLU) winograd_->set_leaky(ops::kLeakySlope);  // in its output transform
      kind_ = "winograd " + kind_;
      return;
    }
    if (winograd && k == 1 && spec.stride == 1 && spec.act == Act::kNone) {  // our kernels, as for 3x3
      const float* b = spec.bias && with_bias ? model.tensor(name_ + ".bias").data.data() : nullptr;
      pointwise_ = std::make_unique<PointwiseConv>(w.data.data(), b, cin_all, o0, cout, i0, cin);
      return;
    }
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
  ~Conv() {
    if (op_) xnn_delete_operator(op_);
  }
  Conv(const Conv&) = delete;
  Conv& operator=(const Conv&) = delete;

  // Shapes the operator for an h x w input (a no-op when it already is); returns the workspace
  // bytes that size needs.
  size_t reshape(size_t h, size_t w, pthreadpool_t pool) {
    if (h == h_ && w == w_) return workspace_;
    if (winograd_ || pointwise_) {
      h_ = h;
      w_ = w;
      workspace_ = winograd_ ? winograd_->scratch_bytes(pool) : 0;
      return workspace_;
    }
    size_t oh = 0, ow = 0;
    h_ = w_ = 0;
    check(xnn_reshape_convolution2d_nhwc_f32(op_, /*batch_size=*/1, h, w, &workspace_, &oh, &ow, pool),
          "reshaping " + name_ + " to " + std::to_string(h) + "x" + std::to_string(w));
    h_ = h;
    w_ = w;
    return workspace_;
  }
  // out2: with split_output(), where the channels from the split on go.
  void run(const float* in, float* out, void* workspace, pthreadpool_t pool, float* out2 = nullptr) {
    if (winograd_) {
      winograd_->run(in, in_stride_, h_, w_, out, out_stride_, pool, static_cast<float*>(workspace), out2, out2_stride_,
                     split_);
      return;
    }
    if (pointwise_) {
      pointwise_->run(in, in_stride_, h_ * w_, out, out_stride_, /*accumulate=*/false, pool);
      return;
    }
    check(xnn_setup_convolution2d_nhwc_f32(op_, workspace, in, out), "setting up " + name_);
    check(xnn_run_operator(op_, pool), "running " + name_);
  }
  // Winograd only: tile rows [ty0, ty1) of an h x w image whose rows lie in rings (run_rows).
  void run_rows(const float* in, Rows in_rows, size_t h, size_t w, float* out, Rows out_rows, void* workspace,
                pthreadpool_t pool, size_t ty0, size_t ty1, float* out2 = nullptr, Rows out2_rows = {}) {
    winograd_->run_rows(in, in_rows, in_stride_, h, w, out, out_rows, out_stride_, pool, static_cast<float*>(workspace),
                        ty0, ty1, out2, out2_rows, out2_stride_, split_);
  }
  // out += this convolution of in, where it can add in place (adds_in_place()).
  void run_add(const float* in, float* out, pthreadpool_t pool) {
    pointwise_->run(in, in_stride_, h_ * w_, out, out_stride_, /*accumulate=*/true, pool);
  }
  bool adds_in_place() const { return pointwise_ != nullptr; }
  const std::string& kind() const { return kind_; }
  // Whether its outputs come out with the spec's activation applied (else the caller applies it).
  bool applies_act() const { return winograd_ != nullptr; }
  // Winograd only: output channels from `split` on go to a second buffer, every out2_stride.
  void split_output(size_t split, size_t out2_stride) {
    split_ = split;
    out2_stride_ = out2_stride;
  }

 private:
  std::string name_, kind_;
  xnn_operator_t op_ = nullptr;
  std::unique_ptr<WinogradConv3x3> winograd_;  // 3x3 stride-1 convolutions, when chosen
  std::unique_ptr<PointwiseConv> pointwise_;   // 1x1 ones, likewise
  size_t h_ = 0, w_ = 0, workspace_ = 0, in_stride_ = 0, out_stride_ = 0, out2_stride_ = 0, split_ = size_t(-1);
};

size_t out_side(size_t n, uint32_t stride) { return (n + stride - 1) / stride; }  // 3x3, pad 1

struct Step {  // one distillation step: distilled part into the concatenation, the rest onwards
  // Two convolutions over the same input; with Winograd one (`distilled`, split in two outputs),
  // so that the input is transformed once.
  std::unique_ptr<Conv> distilled, remaining;
  bool split = false;
  size_t rem_channels = 0;
  Act act = Act::kNone;
};

struct Block {
  std::vector<Step> steps;
  std::vector<float> cca0_w, cca0_b, cca1_w, cca1_b;  // (hidden, cat), (cat, hidden)
  std::unique_ptr<Conv> fuse;
  std::unique_ptr<Conv> fusion;  // IMDN: this block's slice of the 1x1 fusion
};

}  // namespace

struct Network::Impl {
  ModelInfo info;
  Architecture arch;
  size_t winograd_tile = 0;  // F(m x m, 3x3): m, or 0 (direct)
  pthreadpool_t pool = nullptr;
  std::vector<std::unique_ptr<Conv>> stem;
  std::vector<Block> blocks;
  std::unique_ptr<Conv> lr, up;
  size_t rem_max = 0;
  // Scratch of the stages, grown to the largest crop seen.
  // NHWC float32, for a crop of ih x iw input pixels and h x w body pixels (P = h * w):
  Buffer in;         // ih x iw x 3: the input scaled to the network's range
  Buffer stem_mid;   // the first conv's output of a two-conv stem (IMDN_AS, IMDN_RTE)
  Buffer rem[2];     // P x rem_max: a distillation step's remaining channels, ping-pong
  Buffer tmp;        // P x nf: a 1x1 conv's output before it is added (fuse, fusion, lr)
  Buffer upbuf;      // P x 3 r^2: the up conv's output before the pixel shuffle
  Buffer workspace;  // XNNPACK's and Winograd's own scratch, as the largest operator asks
  Buffer rings[8];   // blocks streamed: x, the concatenation, each step's remaining channels
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
  void conv(Conv& c, const float* in, float* out, float* out2 = nullptr) {
    timed(c.kind(), [&] { c.run(in, out, workspace.data(), pool, out2); });
  }

  // The operators (and Winograd's transformed weights) are built on the first stage that runs:
  // an instance that only plans jobs (a page's main thread, while a threaded worker runs them)
  // never builds them, which saves it their memory and the time (wasm/core.js).
  std::unique_ptr<Model> model;

  Impl(const Model& m, size_t threads, bool use_winograd)
      : info(m.info()),
        arch(Architecture::of(m.info())),
        winograd_tile(use_winograd ? WinogradConv3x3::kDefaultTile : 0),
        model(std::make_unique<Model>(m)) {
    initialize_xnnpack();
    if (threads != 1) {
      pool = pthreadpool_create(threads);  // 0 = one per core
      if (pool == nullptr) throw Error("cannot create a thread pool");
    }
  }

  void build() {
    if (!model) return;
    const Model& m = *model;
    const bool winograd = winograd_tile != 0;
    stem.clear();  // (a build that threw part way starts again)
    blocks.clear();
    const uint32_t nf = arch.block.nf, d = arch.block.distilled, catc = arch.block.cat_channels();
    for (size_t i = 0; i < arch.stem.size(); ++i) {
      const ConvSpec& s = arch.stem[i];
      stem.push_back(std::make_unique<Conv>(m, "", s, 0, s.cout, 0, s.cin, s.cin, s.cout, true, winograd));
    }
    for (uint32_t b = 0; b < arch.blocks; ++b) {
      const std::string p = "blocks." + std::to_string(b) + ".";
      Block blk;
      size_t in_stride = nf;
      for (size_t k = 0; k < arch.block.steps.size(); ++k) {
        const ConvSpec& s = arch.block.steps[k];
        Step st;
        st.act = s.act;
        if (k + 1 == arch.block.steps.size()) {
          st.distilled = std::make_unique<Conv>(m, p, s, 0, s.cout, 0, s.cin, in_stride, catc, true, winograd);
        } else {
          st.rem_channels = s.cout - d;
          if (winograd && winograd_fits(s, s.cin)) {
            st.distilled = std::make_unique<Conv>(m, p, s, 0, s.cout, 0, s.cin, in_stride, catc, true, winograd);
            st.distilled->split_output(d, st.rem_channels);
            st.split = true;
          } else {
            st.distilled = std::make_unique<Conv>(m, p, s, 0, d, 0, s.cin, in_stride, catc, true, winograd);
            st.remaining =
                std::make_unique<Conv>(m, p, s, d, s.cout, 0, s.cin, in_stride, st.rem_channels, true, winograd);
          }
          rem_max = std::max(rem_max, st.rem_channels);
          in_stride = st.rem_channels;
        }
        blk.steps.push_back(std::move(st));
      }
      if (arch.block.cca) {
        blk.cca0_w = m.tensor(p + "cca.0.weight").data;
        blk.cca0_b = m.tensor(p + "cca.0.bias").data;
        blk.cca1_w = m.tensor(p + "cca.1.weight").data;
        blk.cca1_b = m.tensor(p + "cca.1.bias").data;
      }
      const ConvSpec& f = arch.block.fuse;
      blk.fuse = std::make_unique<Conv>(m, p, f, 0, f.cout, 0, f.cin, catc, nf, true, winograd);
      if (arch.fusion) {
        ConvSpec fs;
        fs.name = "fusion";
        fs.cin = nf * arch.blocks;
        fs.cout = nf;
        fs.kernel = 1;
        blk.fusion =
            std::make_unique<Conv>(m, "", fs, 0, nf, size_t(b) * nf, nf, nf, nf, /*with_bias=*/b == 0, winograd);
      }
      blocks.push_back(std::move(blk));
    }
    lr = std::make_unique<Conv>(m, "", arch.lr, 0, nf, 0, nf, nf, nf, true, winograd);
    up = std::make_unique<Conv>(m, "", arch.up, 0, arch.up.cout, 0, nf, nf, arch.up.cout, true, winograd);
    model.reset();
  }

  ~Impl() {
    stem.clear();
    blocks.clear();
    lr.reset();
    up.reset();
    if (pool) pthreadpool_destroy(pool);
  }

  size_t nf() const { return arch.block.nf; }
  size_t catc() const { return arch.block.cat_channels(); }

  size_t shape(Conv& c, size_t h, size_t w) {
    const size_t ws = c.reshape(h, w, pool);
    workspace.resize(ws / sizeof(float) + 1);
    return ws;
  }

  // ---- Stages. Maps are NHWC float at body resolution; a stage over a crop is exact wherever its
  // ---- receptive field stays inside the crop or meets a true image border (zero padding).

  // fea (bh x bw x nf) of an RGB input in [0,1].
  void stem_stage(const float* rgb, size_t ih, size_t iw, float* fea_out) {
    build();
    in.resize(ih * iw * 3);
    timed("input", [&] { ops::scale_copy(rgb, in.data(), ih * iw * 3, info.input_range, pool); });
    const float* s_in = in.data();
    size_t sh = ih, sw = iw;
    for (size_t i = 0; i < stem.size(); ++i) {
      const ConvSpec& spec = arch.stem[i];
      const size_t oh = out_side(sh, spec.stride), ow = out_side(sw, spec.stride);
      float* s_out = fea_out;
      if (i + 1 < stem.size()) {
        stem_mid.resize(oh * ow * spec.cout);
        s_out = stem_mid.data();
      }
      shape(*stem[i], sh, sw);
      conv(*stem[i], s_in, s_out);
      if (spec.act == Act::kLeakyReLU && !stem[i]->applies_act())
        timed("leaky_relu", [&] { ops::leaky_relu(s_out, oh * ow, spec.cout, spec.cout, pool); });
      sh = oh;
      sw = ow;
      s_in = s_out;
    }
  }

  // Block b's distillation steps: x (h x w x nf) -> cat (h x w x catc), before attention.
  void block_a(size_t b, const float* x_in, size_t h, size_t w, float* cat_out) {
    build();
    Block& blk = blocks[b];
    const size_t P = h * w, d = arch.block.distilled, cc = catc();
    rem[0].resize(P * rem_max);
    rem[1].resize(P * rem_max);
    const float* step_in = x_in;
    for (size_t k = 0; k < blk.steps.size(); ++k) {
      Step& st = blk.steps[k];
      const bool last = st.rem_channels == 0;  // the last step's whole output is concatenated
      float* cat_slice = cat_out + k * d;
      float* r = last ? nullptr : rem[k % 2].data();
      shape(*st.distilled, h, w);
      conv(*st.distilled, step_in, cat_slice, st.split ? r : nullptr);
      if (st.remaining) {
        shape(*st.remaining, h, w);
        conv(*st.remaining, step_in, r);
      }
      if (st.act == Act::kLeakyReLU && !st.distilled->applies_act()) {  // (a split step has no `remaining`)
        timed("leaky_relu", [&] {
          if (last) {
            ops::leaky_relu(cat_slice, P, cc - k * d, cc, pool);
          } else {
            ops::leaky_relu(r, P, st.rem_channels, st.rem_channels, pool);
            ops::leaky_relu(cat_slice, P, d, cc, pool);
          }
        });
      }
      if (!last) step_in = r;
    }
  }

  // Blocks streamed (Network::stream_block): rows of each ring it holds, in steps of `band` rows.
  // Iteration s (s = 0, band, 2 band, ...) runs step k over rows [s - m k, s - m k + band) (m:
  // the Winograd tile, how far a step's outputs depend on the rows of its input: one tile row), so
  // step k + 1 finds the rows it reads (one beyond its own on each side) made by step k in the same
  // iteration, and the last step's rows complete the concatenation's.
  struct Rings {
    size_t x, rem, cat;
  };
  Rings ring_rows(size_t band) const {
    const size_t m = winograd_tile, L = arch.block.steps.size();
    return {band + m * (L - 1) + 1, band + m + 1, band + m * (L - 1)};
  }
  bool can_stream() const {
    if (winograd_tile == 0 || arch.block.steps.size() + 1 > std::size(rings)) return false;
    for (const ConvSpec& s : arch.block.steps)
      if (!winograd_fits(s, s.cin)) return false;
    return true;
  }

  void stream_block(size_t b, size_t H, size_t W, size_t band, const Network::ReadRows& read,
                    const Network::EmitRows& emit) {
    build();
    Block& blk = blocks[b];
    const size_t m = winograd_tile, L = blk.steps.size(), d = arch.block.distilled, cc = catc(), n = nf();
    if (!can_stream() || band == 0 || band % m) throw Error("this network's blocks cannot be streamed");
    const Rings cap = ring_rows(band);
    rings[0].resize(cap.x * W * n);
    rings[1].resize(cap.cat * W * cc);
    for (size_t k = 0; k + 1 < L; ++k) rings[2 + k].resize(cap.rem * W * blk.steps[k].rem_channels);
    const Rows xr{0, cap.x}, cr{0, cap.cat}, rr{0, cap.rem};
    float *x = rings[0].data(), *cat = rings[1].data();
    auto rem = [&](size_t k) { return rings[2 + k].data(); };
    for (size_t k = 0; k < L; ++k) shape(*blk.steps[k].distilled, H, W);
    // Rows [y0, y1) of two rings as runs that neither wraps: f(y0, y1) for each.
    auto runs = [](size_t y0, size_t y1, size_t cap1, size_t cap2, const auto& f) {
      while (y0 < y1) {
        const size_t e = std::min({y1, y0 + cap1 - y0 % cap1, y0 + cap2 - y0 % cap2});
        f(y0, e);
        y0 = e;
      }
    };
    const long h = long(H);
    size_t read_to = 0;
    for (long s = 0; s < h + long(m * (L - 1)); s += long(band)) {
      auto clip = [h](long v) { return size_t(std::max(0L, std::min(h, v))); };
      const size_t want = clip(s + long(band) + 1);
      runs(read_to, want, cap.x, cap.x, [&](size_t y0, size_t y1) { read(y0, y1, x + xr.at(y0) * W * n); });
      read_to = std::max(read_to, want);
      for (size_t k = 0; k < L; ++k) {
        const long a = s - long(m * k);
        const size_t y0 = clip(a), y1 = clip(a + long(band));
        if (y0 >= y1) continue;
        Step& st = blk.steps[k];
        const bool last = k + 1 == L;
        timed(st.distilled->kind(), [&] {
          st.distilled->run_rows(k == 0 ? x : rem(k - 1), k == 0 ? xr : rr, H, W, cat + k * d, cr, workspace.data(),
                                 pool, y0 / m, (y1 + m - 1) / m, last ? nullptr : rem(k), rr);
        });
      }
      const long a = s - long(m * (L - 1));
      runs(clip(a), clip(a + long(band)), cap.cat, cap.x,
           [&](size_t y0, size_t y1) { emit(y0, y1, cat + cr.at(y0) * W * cc, x + xr.at(y0) * W * n); });
    }
  }

  // The attention's channel weights from statistics over the whole image.
  std::vector<float> attention(size_t b, const ops::ChannelSums& sums) {
    build();
    const Block& blk = blocks[b];
    std::vector<double> mean, stdev;
    ops::stats_from_sums(sums, &mean, &stdev);
    return ops::cca_weights(mean, stdev, blk.cca0_w, blk.cca0_b, blk.cca1_w, blk.cca1_b);
  }

  // Block b's pointwise rest over P pixels: cat *= z (attention; z may be null), x += fuse(cat),
  // acc += fusion_b(x) (IMDN). cat is scaled in place.
  void block_b(size_t b, const float* z, float* cat_io, float* x_io, float* acc_io, size_t P) {
    build();
    Block& blk = blocks[b];
    const size_t n = nf();
    if (z) timed("cca_scale", [&] { ops::scale_channels(cat_io, P, catc(), z, pool); });
    // x += fuse(cat); acc += fusion_b(x): in place where the convolution can add (else by a copy).
    auto conv_add = [&](Conv& c, const float* in, float* io) {
      shape(c, 1, P);
      if (c.adds_in_place()) {
        timed(c.kind() + " (+=)", [&] { c.run_add(in, io, pool); });
        return;
      }
      tmp.resize(P * n);
      conv(c, in, tmp.data());
      timed("add", [&] { ops::add(io, tmp.data(), P * n, pool); });
    };
    conv_add(*blk.fuse, cat_io, x_io);
    if (blk.fusion) conv_add(*blk.fusion, x_io, acc_io);
  }

  // The tail over an h x w crop: [LeakyReLU] -> lr -> + fea -> up -> pixel shuffle, writing the
  // top-left oh x ow of the h*r x w*r RGB result (scaled back to [0,1]). src (acc for IMDN, else
  // the last block's output) is modified.
  void tail(float* src, const float* fea_in, size_t h, size_t w, float* out, size_t oh, size_t ow) {
    build();
    const size_t P = h * w, n = nf();
    if (arch.fusion) timed("leaky_relu", [&] { ops::leaky_relu(src, P, n, n, pool); });
    tmp.resize(P * n);
    shape(*lr, h, w);
    conv(*lr, src, tmp.data());
    timed("add", [&] { ops::add(tmp.data(), fea_in, P * n, pool); });
    upbuf.resize(P * arch.up.cout);
    shape(*up, h, w);
    conv(*up, tmp.data(), upbuf.data());
    const float scale = 1.f / info.input_range;
    timed("pixel_shuffle", [&] { ops::pixel_shuffle(upbuf.data(), h, w, arch.upsample, out, oh, ow, scale, pool); });
  }

  std::pair<size_t, size_t> output_size(size_t ih, size_t iw) const { return {ih * info.scale, iw * info.scale}; }
};

namespace {
bool use_winograd(Convolutions c) {
  if (c != Convolutions::kDefault) return c == Convolutions::kWinograd;
#ifdef __EMSCRIPTEN__
  return true;
#else
  const char* env = std::getenv("IMDN_CONV");
  return env != nullptr && std::string(env) == "winograd";
#endif
}
}  // namespace

Network::Network(const Model& model, size_t threads, Convolutions convolutions)
    : impl_(std::make_unique<Impl>(model, threads, use_winograd(convolutions))) {}
Network::~Network() = default;
const ModelInfo& Network::info() const { return impl_->info; }
pthreadpool_t Network::pool() const { return impl_->pool; }
std::pair<size_t, size_t> Network::output_size(size_t h, size_t w) const { return impl_->output_size(h, w); }
void Network::set_memory_limit(uint64_t bytes) { impl_->memory_limit = bytes; }
uint64_t Network::memory_limit() const { return impl_->memory_limit; }
void Network::set_profiling(bool on) {
  impl_->profiling = on;
  impl_->profile_ms.clear();
}
void Network::timed(const std::string& kind, const std::function<void()>& f) { impl_->timed(kind, f); }
std::vector<std::pair<std::string, double>> Network::profile() const {
  std::vector<std::pair<std::string, double>> out(impl_->profile_ms.begin(), impl_->profile_ms.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}
void Network::stage_stem(const float* rgb, size_t ih, size_t iw, float* fea) { impl_->stem_stage(rgb, ih, iw, fea); }
void Network::stage_block_a(size_t block, const float* x, size_t h, size_t w, float* cat) {
  impl_->block_a(block, x, h, w, cat);
}
std::vector<float> Network::stage_attention(size_t block, const ops::ChannelSums& sums) const {
  if (!impl_->arch.block.cca) return {};
  return impl_->attention(block, sums);
}
void Network::stage_block_b(size_t block, const float* z, float* cat, float* x, float* acc, size_t pixels) {
  impl_->block_b(block, z, cat, x, acc, pixels);
}
bool Network::can_stream() const { return impl_->can_stream(); }
uint64_t Network::stream_bytes(size_t w, size_t band) const {
  const Architecture& a = impl_->arch;
  const auto cap = impl_->ring_rows(band);
  uint64_t floats = uint64_t(cap.x) * a.block.nf + uint64_t(cap.cat) * a.block.cat_channels();
  for (const ConvSpec& s : a.block.steps)
    if (s.cout > a.block.distilled) floats += uint64_t(cap.rem) * (s.cout - a.block.distilled);
  return floats * w * sizeof(float);
}
void Network::stream_block(size_t block, size_t h, size_t w, size_t band, const ReadRows& read, const EmitRows& emit) {
  impl_->stream_block(block, h, w, band, read, emit);
}
void Network::stage_tail(float* src, const float* fea, size_t h, size_t w, float* out, size_t oh, size_t ow) {
  impl_->tail(src, fea, h, w, out, oh, ow);
}
const Architecture& Network::architecture() const { return impl_->arch; }
size_t Network::blocks() const { return impl_->arch.blocks; }
size_t Network::features() const { return impl_->nf(); }
size_t Network::cat_channels() const { return impl_->catc(); }
bool Network::has_attention() const { return impl_->arch.block.cca; }
bool Network::has_fusion() const { return impl_->arch.fusion; }
size_t Network::stem_stride() const { return impl_->arch.stem_stride(); }
size_t Network::winograd_tile() const { return impl_->winograd_tile; }
size_t Network::upsample() const { return impl_->arch.upsample; }

}  // namespace imdn
