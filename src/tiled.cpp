#include "tiled.h"

#include <algorithm>
#include <vector>

#include "ops.h"

namespace imdn {

namespace {

struct Rect {
  size_t y = 0, x = 0, h = 0, w = 0;
};

// Tiles of at most `tile` a side, as equal as the grid allows.
size_t grid_step(size_t n, size_t tile) {
  const size_t count = (n + tile - 1) / tile;
  return (n + count - 1) / count;
}

std::vector<Rect> grid(size_t H, size_t W, size_t tile) {
  const size_t sy = grid_step(H, tile), sx = grid_step(W, tile);
  std::vector<Rect> out;
  for (size_t y = 0; y < H; y += sy)
    for (size_t x = 0; x < W; x += sx) out.push_back({y, x, std::min(sy, H - y), std::min(sx, W - x)});
  return out;
}

// The crop around tile r with m pixels of halo. Every crop has the same size, (step + 2m) a side
// where the image allows: near a border the window slides inwards rather than shrinking, which
// keeps the tile exact (it is only further from the crop's inner edges) and lets the operators
// keep their shape from tile to tile instead of being reshaped for each.
Rect grow(const Rect& r, size_t m, size_t H, size_t W, size_t step_h, size_t step_w) {
  auto axis = [](size_t start, size_t len, size_t m_, size_t n, size_t step, size_t* c0, size_t* clen) {
    const size_t want = std::min(n, step + 2 * m_);
    size_t lo = start >= m_ ? start - m_ : 0;
    if (lo + want > n) lo = n - want;
    *c0 = lo;
    *clen = std::max(want, std::min(n, start + len + m_) - lo);
  };
  Rect g;
  axis(r.y, r.h, m, H, step_h, &g.y, &g.h);
  axis(r.x, r.w, m, W, step_w, &g.x, &g.w);
  return g;
}

// Rows per task of the copies below (split across the network's threads).
size_t copy_grain(size_t row_floats) { return std::max<size_t>(1, (size_t(1) << 14) / std::max<size_t>(1, row_floats)); }

// Copies rect r of a map (map_w wide, C channels) into a contiguous buffer.
void take(const float* map, size_t map_w, const Rect& r, size_t C, Buffer* dst, pthreadpool_t pool) {
  dst->resize(r.h * r.w * C);
  float* d = dst->data();
  ops::parallel_rows(pool, r.h, copy_grain(r.w * C), [&](size_t y0, size_t y1) {
    for (size_t y = y0; y < y1; ++y) std::copy_n(map + ((r.y + y) * map_w + r.x) * C, r.w * C, d + y * r.w * C);
  });
}

// Copies the part `core` of a crop (covering rect `crop`) into the map.
void put(const float* crop_data, const Rect& crop, const Rect& core, size_t C, float* map, size_t map_w,
         pthreadpool_t pool) {
  ops::parallel_rows(pool, core.h, copy_grain(core.w * C), [&](size_t y0, size_t y1) {
    for (size_t y = y0; y < y1; ++y) {
      const float* src = crop_data + ((core.y - crop.y + y) * crop.w + (core.x - crop.x)) * C;
      std::copy_n(src, core.w * C, map + ((core.y + y) * map_w + core.x) * C);
    }
  });
}

constexpr size_t kStemHalo = 1;  // body pixels; covers every stem (see tiled.h)
constexpr size_t kTailHalo = 2;  // lr (3x3 or 1x1) and up (3x3)
constexpr size_t kPointwiseChunk = size_t(1) << 16;

}  // namespace

TiledNetwork::TiledNetwork(Network& net, size_t tile) : net_(net), tile_(tile) {
  if (tile < 8) throw Error("tile size must be at least 8, got " + std::to_string(tile));
}

uint64_t TiledNetwork::memory_needed(size_t h, size_t w) const {
  const uint64_t s = net_.stem_stride();
  const uint64_t P = ((h + s - 1) / s) * ((w + s - 1) / s);
  const uint64_t nf = net_.features();
  const uint64_t maps = P * (nf + net_.cat_channels() + (net_.has_fusion() ? nf : 0));
  const uint64_t bh = (h + s - 1) / s, bw = (w + s - 1) / s, m = 2 * net_.architecture().block.steps.size();
  const uint64_t ch = std::min<uint64_t>(bh, std::min<uint64_t>(tile_, bh) + m);
  const uint64_t cw = std::min<uint64_t>(bw, std::min<uint64_t>(tile_, bw) + m);
  const uint64_t r = net_.upsample();
  const uint64_t scratch = ch * cw * (6 * nf + 3 * r * r) + ch * cw * s * s * 3;
  return (maps + scratch) * sizeof(float);
}

void TiledNetwork::run(const float* input, size_t h, size_t w, float* output,
                       const std::function<void(size_t, size_t)>& progress, const RowSink& sink) {
  const ModelInfo& info = net_.info();
  if (h == 0 || w == 0) throw Error("image is empty");
  if (h % info.size_multiple || w % info.size_multiple) {
    throw Error(std::string(arch_name(info.arch)) + " needs sides that are multiples of " +
                std::to_string(info.size_multiple));
  }
  const uint64_t need = memory_needed(h, w);
  if (need > net_.memory_limit()) {
    throw Error("a " + std::to_string(w) + "x" + std::to_string(h) + " input needs " + std::to_string(need >> 20) +
                " MiB for tiled inference, over the " + std::to_string(net_.memory_limit() >> 20) + " MiB limit");
  }
  const Architecture& arch = net_.architecture();
  const size_t S = net_.stem_stride(), r = net_.upsample(), nf = net_.features(), cc = net_.cat_channels();
  const size_t bh = (h + S - 1) / S, bw = (w + S - 1) / S, P = bh * bw;
  const size_t out_h = h * info.scale, out_w = w * info.scale;
  const size_t halo_a = arch.block.steps.size();
  const std::vector<Rect> tiles = grid(bh, bw, tile_);
  const size_t sy = grid_step(bh, tile_), sx = grid_step(bw, tile_);
  const size_t nb = net_.blocks();
  const size_t total = tiles.size() * (nb + 2) + nb;
  size_t done = 0;
  auto step = [&] {
    if (progress) progress(++done, total);
  };
  macs_ = 0;

  Buffer &x = x_, &cat = cat_, &acc = acc_, &crop = crop_, &crop2 = crop2_, &out = out_;
  const pthreadpool_t pool = net_.pool();
  x.resize(P * nf);
  cat.resize(P * cc);
  float* acc_map = nullptr;  // the fusion's accumulator (IMDN only)
  if (net_.has_fusion()) {
    acc.resize(P * nf);
    acc_map = acc.data();
    std::fill_n(acc_map, P * nf, 0.f);
  }

  // The stem's features of body rect c (exact on c shrunk by kStemHalo), into `into`.
  auto stem = [&](const Rect& c, Buffer* into) {
    const size_t iy = c.y * S, ix = c.x * S, ih = std::min(h, (c.y + c.h) * S) - iy, iw = std::min(w, (c.x + c.w) * S) - ix;
    take(input, w, Rect{iy, ix, ih, iw}, 3, &crop, pool);
    into->resize(c.h * c.w * nf);
    net_.stage_stem(crop.data(), ih, iw, into->data());
    macs_ += arch.macs_stem(ih, iw);
  };
  // Stem, tile by tile, into x. (The tail recomputes the features it needs: the stem costs
  // 0.3% of the network, a kept map of them nf floats per pixel.)
  for (const Rect& t : tiles) {
    const Rect c = grow(t, kStemHalo, bh, bw, sy, sx);
    stem(c, &out);
    put(out.data(), c, t, nf, x.data(), bw, pool);
    step();
  }
  for (size_t b = 0; b < nb; ++b) {
    // A: the distillation steps, tile by tile, and the attention's statistics of the tiles.
    ops::ChannelSums sums;
    for (const Rect& t : tiles) {
      const Rect c = grow(t, halo_a, bh, bw, sy, sx);
      take(x.data(), bw, c, nf, &crop, pool);
      out.resize(c.h * c.w * cc);
      net_.stage_block_a(b, crop.data(), c.h, c.w, out.data());
      macs_ += arch.macs_block_a_per_pixel() * c.h * c.w;
      put(out.data(), c, t, cc, cat.data(), bw, pool);
      if (net_.has_attention()) {
        sums.add(ops::channel_sums_rect(out.data() + ((t.y - c.y) * c.w + (t.x - c.x)) * cc, t.h, t.w, c.w, cc, pool));
      }
      step();
    }
    // The barrier: attention weights from the whole image's statistics.
    const std::vector<float> z = net_.stage_attention(b, sums);
    // B: pointwise, in chunks.
    for (size_t p = 0; p < P; p += kPointwiseChunk) {
      const size_t n = std::min(kPointwiseChunk, P - p);
      net_.stage_block_b(b, z.empty() ? nullptr : z.data(), cat.data() + p * cc, x.data() + p * nf,
                         acc_map ? acc_map + p * nf : nullptr, n);
    }
    macs_ += arch.macs_block_b_per_pixel() * P;
    step();
  }
  // Tail, tile by tile, with the stem's features recomputed around the crop.
  float* src_map = acc_map ? acc_map : x.data();
  Buffer fea_wide;
  for (const Rect& t : tiles) {
    const Rect c = grow(t, kTailHalo, bh, bw, sy, sx);
    const Rect cw = grow(c, kStemHalo, bh, bw, c.h, c.w);
    stem(cw, &fea_wide);
    take(fea_wide.data(), cw.w, Rect{c.y - cw.y, c.x - cw.x, c.h, c.w}, nf, &crop2, pool);
    take(src_map, bw, c, nf, &crop, pool);
    out.resize(c.h * r * c.w * r * 3);
    net_.stage_tail(crop.data(), crop2.data(), c.h, c.w, out.data(), c.h * r, c.w * r);
    macs_ += arch.macs_tail_per_pixel() * c.h * c.w;
    const size_t oy0 = t.y * r, ox0 = t.x * r;
    const size_t oy1 = std::min(out_h, (t.y + t.h) * r), ox1 = std::min(out_w, (t.x + t.w) * r);
    ops::parallel_rows(pool, oy1 - oy0, copy_grain((ox1 - ox0) * 3), [&](size_t y0, size_t y1) {
      for (size_t y = oy0 + y0; y < oy0 + y1; ++y) {
        const float* row = out.data() + ((y - c.y * r) * c.w * r + (ox0 - c.x * r)) * 3;
        if (sink) sink(y, ox0, ox1 - ox0, row);
        else std::copy_n(row, (ox1 - ox0) * 3, output + (y * out_w + ox0) * 3);
      }
    });
    step();
  }
}

}  // namespace imdn
