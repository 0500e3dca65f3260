#include "plan.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>

#include "half.h"
#include "ops.h"
#include "resize.h"

namespace imdn {

namespace {

constexpr size_t kAlign = 4;                // tiles and crops start on multiples of this (plan.h)
constexpr size_t kStemHalo = 2;             // body pixels: covers every stem (one 3x3 at body
                                            // resolution, or one at twice it before a stride-2 one,
                                            // or two stride-2 ones), all direct (winograd_fits:
                                            // 3 input channels or stride 2, network.cpp)
constexpr size_t kChunk = size_t(1) << 14;  // pixels per pointwise unit (4 MiB of a 64-channel map)
constexpr size_t kHalfChunk = 1024;         // pixels of a float16 map widened at a time
constexpr size_t kTailTile = 128;           // body pixels: the tail's tiles at most (64 with
                                            // float16 maps: memory is short, and the tail is 9%
                                            // of the compute)
constexpr uint32_t kMagic = 0x54494e55;     // "UNIT"
constexpr size_t kCell = 32;                // body pixels a side of the attention sums' cells
constexpr size_t kBand = 8;                 // blocks streamed: rows a step (Network::stream_block),
                                            // at least: more where threads would wait (band())
constexpr size_t kTickRows = 64;            // blocks streamed: progress every this many rows

// Body pixels of halo that keep a tile exact through a chain of `convs` 3x3 convolutions (plan.h):
// one each where an output depends only on its receptive field (direct, F(2x2)); with F(4x4) every
// output of a 4x4 tile depends in floating point on the tile's whole 6x6 input patch, up to 4 px
// beyond its own receptive field, so each convolution after the first costs 4.
size_t chain_halo(size_t convs, size_t winograd_tile) {
  if (convs == 0) return 0;
  return winograd_tile == 4 ? 4 * (convs - 1) + 1 : convs;
}

// The crop around r with at least m pixels of halo. Crops are (step + 2m) a side where the image
// allows: near a border the window slides inwards rather than shrinking, which keeps the tile exact
// (it is only further from the crop's inner edges) and lets the operators keep their shape from
// tile to tile. Crops start on multiples of kAlign (see plan.h), which can add up to 3 px inside.
// slide = false: clipped at the border instead (recomputed blocks: a crop that slid inwards would
// read far into tiles written before it, whose old values would have to be kept for it).
Rect grow(const Rect& r, size_t m, size_t H, size_t W, size_t step_h, size_t step_w, bool slide = true) {
  auto axis = [m, slide](size_t start, size_t len, size_t n, size_t step, size_t* c0, size_t* clen) {
    const size_t want = slide ? std::min(n, step + 2 * m) : 0;
    size_t lo = start >= m ? start - m : 0;
    if (lo + want > n) lo = n - want;
    lo -= lo % kAlign;
    *c0 = lo;
    *clen = std::min(n, std::max(lo + want, start + len + m)) - lo;
  };
  Rect g;
  axis(r.y, r.h, H, step_h, &g.y, &g.h);
  axis(r.x, r.w, W, step_w, &g.x, &g.w);
  return g;
}

// Rows per task of the copies below (split across the network's threads).
size_t copy_grain(size_t row_floats) {
  return std::max<size_t>(1, (size_t(1) << 14) / std::max<size_t>(1, row_floats));
}

// n values between float32 and float16 storage (half.h), or copied.
inline void convert(const float* s, float* d, size_t n) { std::copy_n(s, n, d); }
inline void convert(const uint16_t* s, float* d, size_t n) { from_half(s, d, n); }
inline void convert(const float* s, uint16_t* d, size_t n) { to_half(s, d, n); }
// (8-bit input planes: the values they were made from, exactly; Job::Pass::rgb8.)
inline void convert(const uint8_t* s, float* d, size_t n) {
  for (size_t i = 0; i < n; ++i) d[i] = float(s[i]) / 255.f;
}

// Every copy between maps, crops and cores: h x w pixels of C channels from src at (sy, sx), rows
// src_w pixels apart, to dst at (dy, dx), rows dst_w apart; rows split across the pool.
template <class S, class D>
void copy_rect(const S* src, size_t src_w, size_t sy, size_t sx, D* dst, size_t dst_w, size_t dy, size_t dx, size_t h,
               size_t w, size_t C, pthreadpool_t pool) {
  ops::parallel_rows(pool, h, copy_grain(w * C), [&](size_t y0, size_t y1) {
    for (size_t y = y0; y < y1; ++y)
      convert(src + ((sy + y) * src_w + sx) * C, dst + ((dy + y) * dst_w + dx) * C, w * C);
  });
}

size_t cells(size_t n) { return (n + kCell - 1) / kCell; }

// One row of n pixels of C channels into a cell's running sums and sums of squares, in double,
// pixel by pixel (cell_sums, and streamed blocks' cells: the same order of additions).
inline void add_row(const float* px, size_t n, size_t C, double* s, double* q) {
  for (size_t x = 0; x < n; ++x, px += C) {
    for (size_t c = 0; c < C; ++c) {
      const double v = px[c];
      s[c] += v;
      q[c] += v * v;
    }
  }
}

// A cell's sums and sums of squares (double) as cell_sums keeps them: 4 * C floats.
void finish_cell(const double* s, const double* q, size_t C, float* o) {
  for (size_t c = 0; c < C; ++c) {
    o[c] = float(s[c]);
    o[C + c] = float(s[c] - double(o[c]));
    o[2 * C + c] = float(q[c]);
    o[3 * C + c] = float(q[c] - double(o[2 * C + c]));
  }
}

// The attention sums of an h x w rect of C channels at src (rows src_w pixels apart) whose
// top-left is a cell corner (plan.h): per cell of kCell x kCell (clipped at the rect's right and
// bottom edges), row by row, the sums and sums of squares in double, pixel by pixel in raster
// order, each kept as a pair of floats (hi, and the rest lo): 4 * C floats a cell, [sum hi, sum lo,
// square hi, square lo], C each. The cells are independent, so the thread count changes nothing.
template <class T>
void cell_sums(const T* src, size_t src_w, size_t h, size_t w, size_t C, float* out, pthreadpool_t pool) {
  const size_t rows = cells(h), cols = cells(w);
  ops::parallel_rows(pool, rows * cols, 1, [&](size_t k0, size_t k1) {
    thread_local std::vector<double> s, q;
    thread_local std::vector<float> wide;
    s.resize(C);
    q.resize(C);
    wide.resize(kCell * C);
    for (size_t k = k0; k < k1; ++k) {
      const size_t y0 = k / cols * kCell, x0 = k % cols * kCell;
      const size_t ch = std::min(kCell, h - y0), cw = std::min(kCell, w - x0);
      std::fill(s.begin(), s.end(), 0.0);
      std::fill(q.begin(), q.end(), 0.0);
      for (size_t y = y0; y < y0 + ch; ++y) {
        const T* row = src + ((y * src_w) + x0) * C;
        const float* px;
        if constexpr (std::is_same_v<T, float>) {
          px = row;
        } else {
          convert(row, wide.data(), cw * C);
          px = wide.data();
        }
        add_row(px, cw, C, s.data(), q.data());
      }
      finish_cell(s.data(), q.data(), C, out + k * 4 * C);
    }
  });
}

// The sums over n cells (cell_sums' layout), added in cell order; `pixels` counted.
ops::ChannelSums add_cells(const float* cell, size_t n, size_t C, size_t pixels) {
  ops::ChannelSums out;
  out.sum.assign(C, 0.0);
  out.sumsq.assign(C, 0.0);
  out.count = pixels;
  for (size_t k = 0; k < n; ++k, cell += 4 * C) {
    for (size_t c = 0; c < C; ++c) {
      out.sum[c] += double(cell[c]) + double(cell[C + c]);
      out.sumsq[c] += double(cell[2 * C + c]) + double(cell[3 * C + c]);
    }
  }
  return out;
}

Rect intersect(const Rect& a, const Rect& b) {
  const size_t y0 = std::max(a.y, b.y), x0 = std::max(a.x, b.x);
  const size_t y1 = std::min(a.y + a.h, b.y + b.h), x1 = std::min(a.x + a.w, b.x + b.w);
  if (y1 <= y0 || x1 <= x0) return {};
  return {y0, x0, y1 - y0, x1 - x0};
}

}  // namespace

// A whole-image map: float32, or float16 where the job's memory limit asks (plan.h); float16 in
// the job's external memory when it has some (its reads and writes then go through a staging
// buffer here, converted on the pool's threads as ever).
struct Map {
  Buffer f;
  std::vector<uint16_t, UnitAllocator<uint16_t>> h;
  bool half = false;
  ExternalStore* ext = nullptr;
  int id = -1;

  Map() = default;
  Map(const Map&) = delete;
  Map& operator=(const Map&) = delete;
  ~Map() { release(); }

  void allocate(size_t n, bool as_half, ExternalStore* store) {
    half = as_half;
    if (half && store) {
      id = store->allocate(uint64_t(n) * sizeof(uint16_t), 0, false);
      if (id < 0) throw std::bad_alloc();
      ext = store;
    } else if (half) {
      h.resize(n);
    } else {
      f.resize(n);
    }
  }
  void zero(size_t n) {
    if (id >= 0)
      return;  // (external buffers start zeroed)
    else if (half)
      std::fill_n(h.data(), n, uint16_t(0));
    else
      std::fill_n(f.data(), n, 0.f);
  }
  void release() {
    f.release();
    decltype(h)().swap(h);
    if (id >= 0) ext->release(id);
    id = -1;
  }
  // h x w pixels of C channels at (y, x) of the map (map_w pixels a row) <-> dst at (dy, dx), rows
  // dst_w apart.
  void read(size_t map_w, size_t y, size_t x, float* dst, size_t dst_w, size_t dy, size_t dx, size_t rows, size_t w,
            size_t C, pthreadpool_t pool) const {
    if (id >= 0) {
      uint16_t* s = staging(rows * w * C);
      external(map_w, y, x, rows, w, C, s, nullptr);
      copy_rect(s, w, 0, 0, dst, dst_w, dy, dx, rows, w, C, pool);
    } else if (half) {
      copy_rect(h.data(), map_w, y, x, dst, dst_w, dy, dx, rows, w, C, pool);
    } else {
      copy_rect(f.data(), map_w, y, x, dst, dst_w, dy, dx, rows, w, C, pool);
    }
  }
  void write(const float* src, size_t src_w, size_t sy, size_t sx, size_t map_w, size_t y, size_t x, size_t rows,
             size_t w, size_t C, pthreadpool_t pool) {
    if (id >= 0) {
      uint16_t* s = staging(rows * w * C);
      copy_rect(src, src_w, sy, sx, s, w, 0, 0, rows, w, C, pool);
      external(map_w, y, x, rows, w, C, nullptr, s);
    } else if (half) {
      copy_rect(src, src_w, sy, sx, h.data(), map_w, y, x, rows, w, C, pool);
    } else {
      copy_rect(src, src_w, sy, sx, f.data(), map_w, y, x, rows, w, C, pool);
    }
  }
  // Values [p0, p1) of C channels (pixels p0 to p1) <-> contiguous floats.
  void read_pixels(size_t p0, size_t p1, size_t C, float* dst, pthreadpool_t pool) const {
    read(1, p0, 0, dst, 1, 0, 0, p1 - p0, 1, C, pool);
  }
  void write_pixels(const float* src, size_t p0, size_t p1, size_t C, pthreadpool_t pool) {
    write(src, 1, 0, 0, 1, p0, 0, p1 - p0, 1, C, pool);
  }

 private:
  // The packed rect <-> the external buffer.
  void external(size_t map_w, size_t y, size_t x, size_t rows, size_t w, size_t C, uint16_t* to,
                const uint16_t* from) const {
    const size_t row = w * C * sizeof(uint16_t);
    const uint64_t stride = uint64_t(map_w) * C * sizeof(uint16_t),
                   offset = (uint64_t(y) * map_w + x) * C * sizeof(uint16_t);
    if (to)
      ext->read_rows(id, offset, row, stride, rows, to);
    else
      ext->write_rows(id, offset, row, stride, rows, from);
  }
  // One per thread that runs jobs, kept from use to use (as plan.cpp's scratch()).
  static uint16_t* staging(size_t n) {
    thread_local std::vector<uint16_t, UnitAllocator<uint16_t>> buffer;
    if (buffer.size() < n) buffer.resize(n);
    return buffer.data();
  }
};

namespace {

// Rect r of a map (map_w pixels a row, C channels) -> contiguous floats.
void take(const Map& map, size_t map_w, const Rect& r, size_t C, Floats* dst, pthreadpool_t pool) {
  dst->resize(r.h * r.w * C);  // (not zeroed: UnitAllocator)
  map.read(map_w, r.y, r.x, dst->data(), r.w, 0, 0, r.h, r.w, C, pool);
}
template <class T>
void take(const T* src, size_t src_w, const Rect& r, size_t C, Floats* dst, pthreadpool_t pool) {
  dst->resize(r.h * r.w * C);
  copy_rect(src, src_w, r.y, r.x, dst->data(), r.w, 0, 0, r.h, r.w, C, pool);
}

// Contiguous floats of rect r -> the map.
void put(const float* src, const Rect& r, size_t C, Map& map, size_t map_w, pthreadpool_t pool) {
  map.write(src, r.w, 0, 0, map_w, r.y, r.x, r.h, r.w, C, pool);
}

// The core (cy, cx, ch, cw) of an h x w map with C channels, contiguous.
Floats core_of(const float* data, size_t w, const UnitData::Header& h, size_t C, pthreadpool_t pool) {
  Floats out(size_t(h.ch) * h.cw * C);
  copy_rect(data, w, h.cy, h.cx, out.data(), h.cw, 0, 0, h.ch, h.cw, C, pool);
  return out;
}

std::string dims(size_t w, size_t h) { return std::to_string(w) + "x" + std::to_string(h); }

// IMDN_AS's crop_forward (the authors' test_IMDN_AS.py, shave 32): the side of its four corner
// crops, half the image plus 32, rounded down to a multiple of 4.
size_t as_crop_side(size_t n) { return n / 2 + 32 - (n / 2 + 32) % 4; }

}  // namespace

std::pair<size_t, size_t> output_size(const ModelInfo& info, size_t w, size_t h, size_t target_w, size_t target_h) {
  if (w == 0 || h == 0) throw Error("image is empty (" + dims(w, h) + ")");
  size_t ow = w * info.scale, oh = h * info.scale;
  if (target_w || target_h) {
    if (info.arch != Arch::kIMDN_AS) {
      throw Error(std::string("a target size needs the IMDN_AS model; ") + arch_name(info.arch) + " upscales by x" +
                  std::to_string(info.scale));
    }
    if (!target_w || !target_h) throw Error("a target size needs both width and height");
    ow = target_w;
    oh = target_h;
  }
  if (w > (1u << 20) || h > (1u << 20) || ow > (1u << 20) || oh > (1u << 20) || ow * oh > kMaxImagePixels) {
    throw Error("output of " + dims(ow, oh) + " pixels is too large (limit " + std::to_string(kMaxImagePixels >> 20) +
                " Mpx)");
  }
  return {ow, oh};
}

// ---- Units ----------------------------------------------------------------------------------

void UnitData::write_prefix(uint8_t* p) const {
  const uint32_t n[4] = {uint32_t(a[0].size()), uint32_t(a[1].size()), uint32_t(a[2].size()), uint32_t(a[3].size())};
  std::memcpy(p, &kMagic, sizeof(kMagic));
  std::memcpy(p + sizeof(kMagic), &head, sizeof(Header));
  std::memcpy(p + sizeof(kMagic) + sizeof(Header), n, sizeof(n));
}

size_t UnitData::encoded_size() const {
  size_t bytes = kPrefix;
  for (const auto& v : a) bytes += v.size() * sizeof(float);
  return bytes;
}

UnitData UnitData::read_prefix(const uint8_t* bytes, size_t size) {
  UnitData d;
  uint32_t magic = 0, n[4];
  if (size < kPrefix) throw Error("unit message too short");
  std::memcpy(&magic, bytes, sizeof(magic));
  if (magic != kMagic) throw Error("not a unit message");
  std::memcpy(&d.head, bytes + sizeof(magic), sizeof(Header));
  std::memcpy(n, bytes + sizeof(magic) + sizeof(Header), sizeof(n));
  size_t at = kPrefix;
  for (size_t i = 0; i < 4; ++i) {
    if (n[i] > (size - at) / sizeof(float)) throw Error("unit message truncated");
    d.a[i].resize(n[i]);
    at += n[i] * sizeof(float);
  }
  if (at != size) throw Error("unit message has trailing bytes");
  return d;
}

std::vector<uint8_t> UnitData::encode() const {
  std::vector<uint8_t> out(encoded_size());
  write_prefix(out.data());
  uint8_t* p = out.data() + kPrefix;
  for (const auto& v : a) {
    if (!v.empty()) std::memcpy(p, v.data(), v.size() * sizeof(float));
    p += v.size() * sizeof(float);
  }
  return out;
}

UnitData UnitData::decode(const uint8_t* bytes, size_t size) {
  UnitData d = read_prefix(bytes, size);
  const uint8_t* p = bytes + kPrefix;
  for (auto& v : d.a) {
    if (!v.empty()) std::memcpy(v.data(), p, v.size() * sizeof(float));
    p += v.size() * sizeof(float);
  }
  return d;
}

namespace {
// A unit's whole-crop outputs, kept from unit to unit: fresh memory costs page faults and
// zeroing, more than the work on it (one set per thread that runs units).
float* scratch(size_t k, size_t floats) {
  thread_local Buffer buffers[3];
  buffers[k].resize(floats);
  return buffers[k].data();
}
}  // namespace

UnitData run_unit(Network& net, UnitData in) {
  const UnitData::Header& h = in.head;
  const size_t nf = net.features(), cc = net.cat_channels(), S = net.stem_stride(), r = net.upsample();
  const size_t P = size_t(h.h) * h.w;
  auto need = [](bool ok, const char* what) {
    if (!ok) throw Error(std::string("unit: ") + what);
  };
  const bool core_ok = h.ch && h.cw && size_t(h.cy) + h.ch <= h.h && size_t(h.cx) + h.cw <= h.w;
  const bool block_ok = h.block < net.blocks();
  UnitData out;
  out.head = h;
  switch (UnitKind(h.kind)) {
    case UnitKind::kStem: {
      need(core_ok && (h.ih + S - 1) / S == h.h && (h.iw + S - 1) / S == h.w, "stem crop sizes disagree");
      need(in.a[0].size() == size_t(h.ih) * h.iw * 3, "stem input does not match the crop");
      float* fea = scratch(0, P * nf);
      net.stage_stem(in.a[0].data(), h.ih, h.iw, fea);
      out.a[0] = core_of(fea, h.w, h, nf, net.pool());
      return out;
    }
    case UnitKind::kBlockA: {
      need(core_ok && block_ok && in.a[0].size() == P * nf, "block input does not match the crop");
      float* cat = scratch(0, P * cc);
      net.stage_block_a(h.block, in.a[0].data(), h.h, h.w, cat);
      out.a[0] = core_of(cat, h.w, h, cc, net.pool());
      return out;
    }
    case UnitKind::kBlockB: {
      const size_t n = h.pixels;
      need(block_ok && in.a[0].size() == (net.has_attention() ? cc : 0) && in.a[1].size() == n * cc &&
               in.a[2].size() == n * nf && in.a[3].size() == (net.has_fusion() ? n * nf : 0),
           "pointwise data does not match its pixel count");
      net.stage_block_b(h.block, in.a[0].empty() ? nullptr : in.a[0].data(), in.a[1].data(), in.a[2].data(),
                        in.a[3].empty() ? nullptr : in.a[3].data(), n);
      out.a[0] = std::move(in.a[2]);
      out.a[1] = std::move(in.a[3]);
      return out;
    }
    case UnitKind::kBlockSums: {
      need(core_ok && block_ok && in.a[0].size() == P * nf, "block input does not match the crop");
      float* cat = scratch(0, P * cc);
      net.stage_block_a(h.block, in.a[0].data(), h.h, h.w, cat);
      out.a[0].resize(cells(h.ch) * cells(h.cw) * 4 * cc);
      cell_sums(cat + (size_t(h.cy) * h.w + h.cx) * cc, h.w, h.ch, h.cw, cc, out.a[0].data(), net.pool());
      return out;
    }
    case UnitKind::kBlockWhole: {
      const size_t n = size_t(h.ch) * h.cw;
      need(core_ok && block_ok && in.a[0].size() == (net.has_attention() ? cc : 0) && in.a[1].size() == P * nf &&
               in.a[2].size() == (net.has_fusion() ? n * nf : 0),
           "block data does not match the crop");
      float* cat = scratch(0, P * cc);
      net.stage_block_a(h.block, in.a[1].data(), h.h, h.w, cat);
      // The rest on the core alone: the same pointwise arithmetic as kBlockB's.
      Floats core_cat = core_of(cat, h.w, h, cc, net.pool());
      out.a[0] = core_of(in.a[1].data(), h.w, h, nf, net.pool());
      out.a[1] = std::move(in.a[2]);
      net.stage_block_b(h.block, in.a[0].empty() ? nullptr : in.a[0].data(), core_cat.data(), out.a[0].data(),
                        out.a[1].empty() ? nullptr : out.a[1].data(), n);
      return out;
    }
    case UnitKind::kTail: {
      const size_t fw = (h.iw + S - 1) / S, fh = (h.ih + S - 1) / S;
      need(core_ok && size_t(h.ay) + h.h <= fh && size_t(h.ax) + h.w <= fw, "tail crop outside the stem's features");
      need(h.oh && h.ow && h.oh <= h.ch * r && h.ow <= h.cw * r, "tail output outside its core");
      need(in.a[0].size() == P * nf && in.a[1].size() == size_t(h.ih) * h.iw * 3, "tail data does not match the crop");
      float *wide = scratch(0, fw * fh * nf), *fea = scratch(1, P * nf), *rgb = scratch(2, P * r * r * 3);
      net.stage_stem(in.a[1].data(), h.ih, h.iw, wide);
      copy_rect(wide, fw, h.ay, h.ax, fea, h.w, 0, 0, h.h, h.w, nf, net.pool());
      net.stage_tail(in.a[0].data(), fea, h.h, h.w, rgb, h.h * r, h.w * r);
      out.a[0].resize(size_t(h.oh) * h.ow * 3);
      copy_rect(rgb, h.w * r, h.cy * r, h.cx * r, out.a[0].data(), h.ow, 0, 0, h.oh, h.ow, 3, net.pool());
      return out;
    }
  }
  throw Error("unit of an unknown kind " + std::to_string(h.kind));
}

// ---- Tiles ----------------------------------------------------------------------------------

std::vector<Rect> plan_tiles(size_t H, size_t W, size_t tile, size_t min_tiles, size_t align) {
  size_t cols = (W + tile - 1) / tile, rows = (H + tile - 1) / tile;
  while (cols * rows < min_tiles) {
    const double tw = double(W) / double(cols), th = double(H) / double(rows);
    if (std::max(tw, th) / 2 < 16) break;
    if (tw >= th)
      ++cols;
    else
      ++rows;
  }
  auto up = [align](size_t n) { return std::max(align, (n + align - 1) / align * align); };
  const size_t sy = up((H + rows - 1) / rows), sx = up((W + cols - 1) / cols);
  std::vector<Rect> out;
  for (size_t y = 0; y < H; y += sy)
    for (size_t x = 0; x < W; x += sx) out.push_back({y, x, std::min(sy, H - y), std::min(sx, W - x)});
  return out;
}

// ---- The job --------------------------------------------------------------------------------

struct Job::Pass {
  enum Role { kColour, kGrey, kAlpha } role = kColour;
  std::vector<float> rgb;     // the input plane, h x w x 3 in [0,1]...
  std::vector<uint8_t> rgb8;  // ...or, where every value is k / 255 (8-bit images), k
  bool eight = true;          // rgb8 (or, planned without pixels, assumed so: 8-bit input)
  size_t h = 0, w = 0, bh = 0, bw = 0;
  std::vector<Rect> tiles;   // body pixels
  std::vector<Rect> strips;  // blocks streamed: their units' cores, columns of the whole height
  size_t step_h = 0, step_w = 0;
  Rect keep;              // of this pass's output, the part that goes into the result...
  size_t oy = 0, ox = 0;  // ...at (oy, ox)
  size_t group = 0;
  size_t rgb_floats = 0;     // rgb's size (a plan without pixels has none)
  Map x, cat, acc;           // body maps: x (P x nf), cat (P x cat_channels), acc (P x nf, IMDN)
  std::vector<float> cells;  // blocks recomputed: the current block's attention sums per cell
  std::vector<float> z;      // the current block's attention weights
};

Job::~Job() {
  if (out_id_ >= 0) options_.external->release(out_id_);
}

Job::Job(Network& net, const Image& input, const JobOptions& o)
    : Job(net, &input, input.width, input.height, input.channels, o) {}

JobMemory Job::estimate(Network& net, size_t width, size_t height, int channels, const JobOptions& options) {
  if (channels < 1 || channels > 4) throw Error("channels must be 1 to 4");
  return Job(net, nullptr, width, height, channels, options).plan_;
}

Job::Job(Network& net, const Image* input, size_t in_w, size_t in_h, int in_c, const JobOptions& o)
    : net_(net), options_(o) {
  const ModelInfo& info = net.info();
  if (in_w == 0 || in_h == 0) throw Error("image is empty (" + dims(in_w, in_h) + ")");
  if (input && (input->channels < 1 || input->channels > 4 || input->data.size() != in_w * in_h * size_t(in_c))) {
    throw Error("malformed image: " + std::to_string(input->channels) + " channels, " +
                std::to_string(input->data.size()) + " values for " + dims(in_w, in_h));
  }
  if (o.tile != 0 && o.tile < 8) throw Error("tile size must be at least 8, got " + std::to_string(o.tile));
  if (o.map_bits != 0 && o.map_bits != 16 && o.map_bits != 32)
    throw Error("map precision must be 16 or 32 bits, got " + std::to_string(o.map_bits));
  if (o.recompute < -1 || o.recompute > 1) throw Error("recompute must be -1, 0 or 1");
  const auto [ow, oh] = output_size(info, in_w, in_h, o.target_width, o.target_height);
  // IMDN_AS with a target size: the input resized to it and quantized to 8 bits first, as the
  // authors prepared their inputs.
  const Image* src = input;
  Image resized;
  if (o.target_width && input) {
    resized = *input;
    resized.width = ow;
    resized.height = oh;
    resized.data = resize_bicubic(input->data.data(), input->height, input->width, size_t(input->channels), oh, ow);
    for (float& v : resized.data) v = float(to_u8(v)) / 255.f;
    src = &resized;
  }
  const size_t h = o.target_width ? oh : in_h, w = o.target_width ? ow : in_w, n = h * w, ch = size_t(in_c);
  out_w_ = w * info.scale;
  out_h_ = h * info.scale;
  out_c_ = o.rgba8 ? 4 : o.raw ? 3 : in_c;

  // The fewest planes that make the image: grey when R = G = B everywhere (or one channel), no
  // alpha pass when alpha is all 1. Without pixels (estimate): colour, and translucent alpha.
  const float* px = src ? src->data.data() : nullptr;
  bool grey = ch <= 2;
  if (!grey && !o.raw && px) {
    grey = true;
    for (size_t p = 0; p < n && grey; ++p) grey = px[p * ch] == px[p * ch + 1] && px[p * ch] == px[p * ch + 2];
  }
  const size_t alpha = (ch == 2 || ch == 4) && !o.raw ? ch - 1 : 0;
  bool opaque = !px && alpha ? false : true;
  for (size_t p = 0; px && alpha && p < n && opaque; ++p) opaque = px[p * ch + alpha] >= 1.f;
  fill_alpha_ = out_c_ == 4 || out_c_ == 2;

  // Passes of one plane (the plane is built on demand: pick(p) is its RGB value at pixel p).
  auto plane = [&](Pass::Role role, size_t group) {
    std::vector<float> rgb(px ? n * 3 : 0);
    for (size_t p = 0; px && p < n; ++p) {
      for (size_t c = 0; c < 3; ++c) {
        rgb[p * 3 + c] = role == Pass::kAlpha ? px[p * ch + alpha] : px[p * ch + (grey ? 0 : c)];
      }
    }
    auto crop = [&](size_t y0, size_t x0, size_t chh, size_t cww) {
      std::vector<float> out(px ? chh * cww * 3 : 0);
      for (size_t y = 0; px && y < chh; ++y)
        std::copy_n(rgb.data() + ((y0 + y) * w + x0) * 3, cww * 3, out.data() + y * cww * 3);
      return out;
    };
    auto add = [&](std::vector<float> data, size_t ph, size_t pw, Rect keep, size_t oy, size_t ox, size_t g) {
      auto pass = std::make_unique<Pass>();
      pass->role = role;
      pass->rgb_floats = ph * pw * 3;
      pass->rgb8.resize(data.size());
      for (size_t i = 0; i < data.size() && pass->eight; ++i) {
        const float k = std::nearbyint(data[i] * 255.f);
        pass->eight = k >= 0.f && k <= 255.f && float(uint8_t(k)) / 255.f == data[i];
        if (pass->eight) pass->rgb8[i] = uint8_t(k);
      }
      if (!pass->eight) {
        std::vector<uint8_t>().swap(pass->rgb8);
        pass->rgb = std::move(data);
      }
      pass->h = ph;
      pass->w = pw;
      pass->keep = keep;
      pass->oy = oy;
      pass->ox = ox;
      plan_pass(std::move(pass), g);
    };
    const size_t m = info.size_multiple, scale = info.scale;
    if (m > 1 && (h % m || w % m)) {
      // IMDN_AS at a size that is not a multiple of 4: the authors' crop_forward, four crops of
      // h_size x w_size from the corners, each giving the quadrant nearest its corner; too small
      // for that, the edges replicated up to multiples of 4 and the result cut back.
      const size_t hs = as_crop_side(h), ws = as_crop_side(w);
      if (hs <= h && ws <= w) {
        const size_t ys[2] = {0, h - hs}, xs[2] = {0, w - ws};
        for (int qy = 0; qy < 2; ++qy)
          for (int qx = 0; qx < 2; ++qx) {
            const size_t y0 = qy ? h / 2 : 0, y1 = qy ? h : h / 2, x0 = qx ? w / 2 : 0, x1 = qx ? w : w / 2;
            add(crop(ys[qy], xs[qx], hs, ws), hs, ws, Rect{y0 - ys[qy], x0 - xs[qx], y1 - y0, x1 - x0}, y0, x0, group);
          }
        return;
      }
      const size_t ph = (h + m - 1) / m * m, pw = (w + m - 1) / m * m;
      std::vector<float> padded(px ? ph * pw * 3 : 0);
      for (size_t y = 0; px && y < ph; ++y)
        for (size_t x = 0; x < pw; ++x)
          std::copy_n(rgb.data() + (std::min(y, h - 1) * w + std::min(x, w - 1)) * 3, 3,
                      padded.data() + (y * pw + x) * 3);
      add(std::move(padded), ph, pw, Rect{0, 0, h, w}, 0, 0, group);
      return;
    }
    if (!o.exact && info.arch != Arch::kIMDN_AS) {
      // Whole-network tiles: each tile a pass of its own with a halo as wide as the receptive
      // field, min_tiles of them at a time (their maps are held together).
      const size_t align = 2 * net.stem_stride();
      const size_t pad = (info.receptive_radius + align - 1) / align * align;
      const size_t t = std::max<size_t>(1, (o.tile ? o.tile : kDefaultTile) * net.stem_stride() / align);
      size_t k = 0;
      for (Rect c : plan_tiles((h + align - 1) / align, (w + align - 1) / align, t, 1)) {
        c = Rect{c.y * align, c.x * align, std::min(h, (c.y + c.h) * align) - c.y * align,
                 std::min(w, (c.x + c.w) * align) - c.x * align};
        const size_t cy = c.y >= pad ? c.y - pad : 0, cx = c.x >= pad ? c.x - pad : 0;
        const size_t chh = std::min(h, c.y + c.h + pad) - cy, cww = std::min(w, c.x + c.w + pad) - cx;
        add(crop(cy, cx, chh, cww), chh, cww, Rect{(c.y - cy) * scale, (c.x - cx) * scale, c.h * scale, c.w * scale},
            c.y * scale, c.x * scale, group + k++ / std::max<size_t>(1, o.min_tiles));
      }
      return;
    }
    add(std::move(rgb), h, w, Rect{0, 0, h * scale, w * scale}, 0, 0, group);
  };
  plane(grey ? Pass::kGrey : Pass::kColour, 0);
  if (alpha && !opaque) plane(Pass::kAlpha, groups_);
  fit_memory(input);
}

namespace {
std::string mib(uint64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }
}  // namespace

// Plans the phases under the memory limit: float32 maps at the asked tile size where that fits,
// then at smaller tiles (down to 64: halos cost more compute as tiles shrink), then float16 maps,
// then float16 maps with the blocks recomputed (about twice the time). Networks without attention
// (RTC, RTE) always recompute: a block is then one phase, its steps run once, and the
// concatenation map is not needed at all.
void Job::fit_memory(const Image* input) {
  // (never above the network's own limit: what one instance can hold, 3 GiB in 32-bit WebAssembly)
  const uint64_t limit =
      options_.memory_limit ? std::min(options_.memory_limit, net_.memory_limit()) : net_.memory_limit();
  const size_t asked = options_.tile ? options_.tile : kDefaultTile;
  struct Candidate {
    bool half;
    size_t tile;
    bool recompute;
    size_t strip;  // blocks streamed in strips this wide (kWhole: the body's width), or 0
  };
  constexpr size_t kWhole = size_t(-1);
  std::vector<Candidate> candidates;
  const bool whole_network = !options_.exact && net_.info().arch != Arch::kIMDN_AS;
  size_t widest = 0, tallest = 0;
  for (const auto& p : passes_) widest = std::max(widest, p->bw), tallest = std::max(tallest, p->bh);
  // (Float16 maps mean memory is short: their tiles start at 128, whose scratch is a quarter of
  // 256's for about 3% more compute. Recomputed blocks run their steps twice over each crop, so
  // halos cost them twice: streamed where the job runs in one instance (no halo but at the sides
  // of strips, and rings of rows instead of crops: plan.h), else on tiles of 192, then 160, 128
  // (13 px of halo a side: crops 1.29x, 1.35x, 1.45x their tile), as far as the limit allows.)
  const bool free = !net_.has_attention();  // recomputing costs nothing
  const bool stream = options_.stream && net_.can_stream() && !whole_network;
  for (int recompute : {0, 1}) {
    if (whole_network && recompute) continue;
    if ((options_.recompute == 1 && !recompute) || (options_.recompute == -1 && recompute)) continue;
    if (free && !recompute && options_.recompute == 0 && !whole_network) continue;
    for (int bits : {32, 16}) {
      if (options_.map_bits && options_.map_bits != bits) continue;
      // (Recomputed blocks are the last resort: float16 unless asked otherwise.)
      if (recompute && !free && options_.recompute == 0 && bits == 32 && !options_.map_bits) continue;
      const bool small =
          (bits == 16 || (recompute && !free)) && !whole_network && !options_.map_bits && !options_.recompute;
      const bool twice = small && recompute && !free;
      const size_t start = small ? std::min<size_t>(asked, twice ? 192 : 128) : asked;
      // Streamed where tiles would cut the image (a single tile has no halo, and runs each
      // operation once over the whole image: fewer calls to the threads than bands); recomputed
      // blocks always, their halos costing twice.
      if (stream && (recompute || widest > start || tallest > start)) {
        // (The stem, all that is still tiled but the tail, at 64 under a tight limit: its halo is
        // 2 px and its work 0.3%.)
        const size_t stem = recompute ? std::min<size_t>(start, 64) : start;
        for (size_t strip : {kWhole, size_t(1024), size_t(512), size_t(256)})
          if ((strip == kWhole || strip < widest) && !options_.strip)
            candidates.push_back({bits == 16, stem, recompute == 1, strip});
        if (options_.strip) candidates.push_back({bits == 16, stem, recompute == 1, options_.strip});
      }
      candidates.push_back({bits == 16, start, recompute == 1, 0});
      for (size_t t : {size_t(160), size_t(128), size_t(64)}) {
        if (t < start && (t != 160 || twice) && !whole_network)
          candidates.push_back({bits == 16, t, recompute == 1, 0});
      }
    }
  }
  auto plan = [&](const Candidate& c) {
    half_ = c.half;
    recompute_ = c.recompute;
    strip_ = c.strip;
    options_.tile = c.tile;
    for (auto& p : passes_) tile_pass(*p);
    build_phases();
  };
  // The first that fits; where none does, the one that needs least (what the refusal names).
  uint64_t first = 0, least = ~uint64_t(0);
  size_t smallest = 0;
  for (size_t k = 0; k < candidates.size(); ++k) {
    plan(candidates[k]);
    if (k == 0) first = memory_;
    if (memory_ <= limit) break;
    if (memory_ < least) least = memory_, smallest = k;
  }
  if (memory_ > limit && smallest + 1 != candidates.size()) plan(candidates[smallest]);
  plan_.bytes = memory_;
  plan_.limit = limit;
  plan_.map_bits = half_ ? 16 : 32;
  plan_.recompute = recompute_;
  plan_.streamed = strip_ != 0;
  plan_.tile = options_.tile;
  plan_.float32_bytes = candidates.front().half || candidates.front().recompute ? 0 : first;
  plan_.fits = memory_ <= limit;
  if (!plan_.fits) {
    const std::string how =
        (half_ ? "float16 maps, tiles of " + std::to_string(options_.tile * net_.stem_stride()) + " px"
               : "float32 maps") +
        (recompute_ ? strip_ ? ", blocks recomputed and streamed" : ", blocks recomputed" : "");
    plan_.why = "a " + dims(out_w_ / net_.info().scale, out_h_ / net_.info().scale) + " input needs " + mib(memory_) +
                " (" + how + "), over the memory limit of " + mib(limit);
    if (input) throw Error(plan_.why);
  }
}

// The output, allocated when the first tail begins: by then the maps the tail does not read are
// given back, and it takes their place.
void Job::begin_output() {
  if (!out8_.empty() || !outf_.empty() || out_id_ >= 0) return;
  if (options_.rgba8 && options_.external) {
    out_id_ = options_.external->allocate(uint64_t(out_w_) * out_h_ * 4, 0xFF000000u, true);  // opaque black
    if (out_id_ < 0) throw std::bad_alloc();
  } else if (options_.rgba8) {
    out8_.assign(out_w_ * out_h_ * 4, 0);
    for (size_t p = 0; p < out_w_ * out_h_; ++p) out8_[p * 4 + 3] = 255;
  } else {
    outf_.assign(out_w_ * out_h_ * size_t(out_c_), 0.f);
    if (fill_alpha_)
      for (size_t p = 0; p < out_w_ * out_h_; ++p) outf_[p * out_c_ + out_c_ - 1] = 1.f;
  }
}

void Job::plan_pass(std::unique_ptr<Pass> p, size_t group) {
  const ModelInfo& info = net_.info();
  if (p->h % info.size_multiple || p->w % info.size_multiple) {
    throw Error(std::string(arch_name(info.arch)) + " needs sides that are multiples of " +
                std::to_string(info.size_multiple));
  }
  const size_t S = net_.stem_stride();
  p->bh = (p->h + S - 1) / S;
  p->bw = (p->w + S - 1) / S;
  p->group = group;
  groups_ = std::max(groups_, group + 1);
  passes_.push_back(std::move(p));
}

void Job::tile_pass(Pass& p) {
  const bool whole_network = !options_.exact && net_.info().arch != Arch::kIMDN_AS;
  const size_t tile = whole_network ? std::max(p.bh, p.bw) : (options_.tile ? options_.tile : kDefaultTile);
  const bool cells = recompute_ && net_.has_attention();
  p.tiles = plan_tiles(p.bh, p.bw, tile, whole_network ? 1 : options_.min_tiles, cells ? kCell : kAlign);
  p.step_h = p.tiles.front().h;
  p.step_w = p.tiles.front().w;
  // Blocks streamed: strips of the whole height, as equal as the cells allow.
  p.strips.clear();
  if (strip_) {
    const size_t cols = (p.bw + std::min(strip_, p.bw) - 1) / std::min(strip_, p.bw);
    const size_t sw = (p.bw + cols - 1) / cols, step = (sw + kCell - 1) / kCell * kCell;
    for (size_t x = 0; x < p.bw; x += step) p.strips.push_back({0, x, p.bh, std::min(step, p.bw - x)});
  }
}

void Job::build_phases() {
  const size_t nb = net_.blocks(), nf = net_.features(), cc = net_.cat_channels(), wt = net_.winograd_tile(),
               halo_a = chain_halo(net_.architecture().block.steps.size(), wt),
               halo_tail = chain_halo(2, wt);  // tail: lr (3x3 or 1x1), up
  const size_t r = net_.upsample(), S = net_.stem_stride();
  units_.clear();
  phases_.clear();
  tiles_ = 0;
  macs_ = 0;
  const uint64_t value = half_ ? sizeof(uint16_t) : sizeof(float);
  const uint64_t out_bytes = uint64_t(out_w_) * out_h_ * (options_.rgba8 ? 4 : uint64_t(out_c_) * sizeof(float));
  uint64_t maps = 0, planes = 0, scratch = 0;
  const size_t tail_tile = half_ ? kTailTile / 2 : kTailTile;
  for (size_t g = 0; g < groups_; ++g) {
    std::vector<size_t> in_group;
    for (size_t i = 0; i < passes_.size(); ++i)
      if (passes_[i]->group == g) in_group.push_back(i);
    auto phase = [&](const std::function<void(size_t, Pass&)>& add_units) {
      Phase ph;
      ph.begin = units_.size();
      for (size_t i : in_group) add_units(i, *passes_[i]);
      ph.count = units_.size() - ph.begin;
      ph.pointwise = ph.count > 0 && units_[ph.begin].kind == UnitKind::kBlockB;
      phases_.push_back(ph);
    };
    auto unit = [&](UnitKind kind, size_t pass, size_t block, const Rect& t, const Rect& c, const Rect& wide) {
      Unit u{kind, pass, block, phases_.size(), t, c, wide};
      units_.push_back(u);
    };
    phase([&](size_t i, Pass& p) {
      for (const Rect& t : p.tiles)
        unit(UnitKind::kStem, i, 0, t, grow(t, kStemHalo, p.bh, p.bw, p.step_h, p.step_w), {});
    });
    for (size_t b = 0; b < nb; ++b) {
      if (recompute_) {
        for (UnitKind kind : {UnitKind::kBlockSums, UnitKind::kBlockWhole}) {
          if (kind == UnitKind::kBlockSums && !net_.has_attention()) continue;
          phase([&](size_t i, Pass& p) {
            for (const Rect& t : strip_ ? p.strips : p.tiles)
              unit(kind, i, b, t, grow(t, halo_a, p.bh, p.bw, p.step_h, p.step_w, false), {});
          });
        }
        continue;
      }
      phase([&](size_t i, Pass& p) {
        for (const Rect& t : strip_ ? p.strips : p.tiles)
          unit(UnitKind::kBlockA, i, b, t, grow(t, halo_a, p.bh, p.bw, p.step_h, p.step_w, !strip_), {});
      });
      phase([&](size_t i, Pass& p) {
        const size_t P = p.bh * p.bw,
                     chunks = std::min(
                         P, std::max((P + kChunk - 1) / kChunk, options_.min_tiles > 1 ? 2 * options_.min_tiles : 1));
        for (size_t k = 0; k < chunks; ++k) {
          unit(UnitKind::kBlockB, i, b, {}, {}, {});
          units_.back().p0 = k * P / chunks;
          units_.back().p1 = (k + 1) * P / chunks;
        }
      });
    }
    // The tail in tiles of at most tail_tile: its crops hold the most channels per pixel (features,
    // the stem's again, the up convolution's 3 r^2), and its halo is small.
    phase([&](size_t i, Pass& p) {
      const std::vector<Rect> tail_tiles =
          p.step_h > tail_tile || p.step_w > tail_tile ? plan_tiles(p.bh, p.bw, tail_tile, 1) : p.tiles;
      const size_t sh = tail_tiles.front().h, sw = tail_tiles.front().w;
      for (const Rect& t : tail_tiles) {
        const Rect c = grow(t, halo_tail, p.bh, p.bw, sh, sw);
        unit(UnitKind::kTail, i, 0, t, c, grow(c, kStemHalo, p.bh, p.bw, c.h, c.w));
        ++tiles_;
      }
    });
    // What the group holds at once: its maps through the blocks (and the output of the groups
    // before), then the map the tail reads and the output.
    uint64_t all = 0, tail = 0;
    for (size_t i : in_group) {
      const Pass& p = *passes_[i];
      const uint64_t P = uint64_t(p.bh) * p.bw;
      all += P * (nf + (recompute_ ? 0 : cc) + (net_.has_fusion() ? nf : 0)) * value;
      if (recompute_ && net_.has_attention()) all += uint64_t(cells(p.bh)) * cells(p.bw) * 4 * cc * sizeof(float);
      if (recompute_) {
        // The old x kept for units not yet gathered (Job::Patch). Units are gathered in raster
        // order, so a unit not yet gathered overlaps tiles written before it only with the
        // strips of its crop above and left of its tile, and those units lie within a row of
        // tiles after the first not gathered: a row's upper strips, and two units' both (the one
        // gathered next, and one more for a pool's units run ahead).
        // (Every block's units have the first's crops.)
        uint64_t row = 0, rows = 0, both = 0;
        size_t row_y = 0;
        for (const Unit& u : units_) {
          if (u.kind != UnitKind::kBlockWhole || u.block != 0 || u.pass != i) continue;
          if (u.tile.y != row_y) rows = std::max(rows, row), row = 0, row_y = u.tile.y;
          const uint64_t above = uint64_t(u.crop.w) * (u.tile.y - u.crop.y);
          row += above;
          both = std::max(both, above + uint64_t(u.tile.x - u.crop.x) * u.crop.h);
        }
        rows = std::max(rows, row);
        all += (rows + 2 * both) * nf * sizeof(float);
      }
      tail += P * nf * value;
      planes += p.rgb_floats * (p.eight ? 1 : sizeof(float));
    }
    maps = std::max({maps, all + (g > 0 ? out_bytes : 0), tail + out_bytes});
  }
  // One unit's scratch at a time, but each buffer stays as large as its largest use (the
  // network's, plan.cpp's scratch(), a gathered unit's arrays): counted as the sum of each kind's
  // largest unit, an upper bound.
  uint64_t kind_max[7] = {0, 0, 0, 0, 0, 0, 0};
  for (const Unit& u : units_) {
    const uint64_t px = uint64_t(u.crop.h) * u.crop.w, wide = uint64_t(u.wide.h) * u.wide.w;
    const uint64_t rings = streamed(u) ? net_.stream_bytes(u.crop.w, band(u.crop.w)) / sizeof(float) : 0;
    uint64_t floats = 0;
    switch (u.kind) {
      case UnitKind::kStem: floats = px * (nf + S * S * 3 * 2); break;
      case UnitKind::kBlockA:  // out, crop, the steps' remainders; streamed: the rings
        floats = strip_ ? rings : px * (cc + nf + 2 * nf);
        break;
      case UnitKind::kBlockSums:
        // (Tiles: kBlockWhole's buffers, on the same crops, are larger.) Streamed: the rings, and
        // a row of cells' sums in double.
        if (strip_) floats = rings + cells(u.tile.w) * cc * 4;
        break;
      case UnitKind::kBlockWhole:  // as kBlockA, and the core's cat, x and acc
        floats = px * (cc + nf + 2 * nf) + uint64_t(u.tile.h) * u.tile.w * (cc + 2 * nf);
        // Streamed: the rings, a band of acc, and of the core's cat and x unless the strip is
        // the whole width.
        if (strip_) floats = rings + band(u.crop.w) * u.tile.w * (nf + (u.tile.w == u.crop.w ? 0 : cc + nf));
        break;
      case UnitKind::kBlockB:
        floats = std::min<uint64_t>(u.p1 - u.p0, half_ ? kHalfChunk : kChunk) * (cc + 3 * nf);
        break;
      case UnitKind::kTail:  // the unit's arrays, the stem again, features, up conv, RGB, twice
        floats = px * (nf * 3 + 3 * r * r * 3) + wide * (nf + S * S * 3 * 2);
        break;
    }
    uint64_t& m = kind_max[size_t(u.kind)];
    m = std::max(m, floats * sizeof(float));
  }
  for (uint64_t m : kind_max) scratch += m;
  if (half_ && options_.external) {
    // External maps: the staging buffer of their largest read (a unit's crop).
    uint64_t px = 0;
    for (const Unit& u : units_)
      px = std::max<uint64_t>(px, uint64_t(streamed(u) ? band(u.crop.w) + 1 : u.crop.h) * u.crop.w);
    scratch += px * nf * sizeof(uint16_t);
  }
  memory_ = maps + planes + scratch;
  const Architecture& arch = net_.architecture();
  for (const Unit& u : units_) {
    const Pass& p = *passes_[u.pass];
    auto stem_macs = [&](const Rect& c) {
      return arch.macs_stem(std::min(p.h, (c.y + c.h) * S) - c.y * S, std::min(p.w, (c.x + c.w) * S) - c.x * S);
    };
    const uint64_t px = uint64_t(u.crop.h) * u.crop.w;
    switch (u.kind) {
      case UnitKind::kStem: macs_ += stem_macs(u.crop); break;
      case UnitKind::kBlockA:
      case UnitKind::kBlockSums: macs_ += arch.macs_block_a_per_pixel() * px; break;
      case UnitKind::kBlockWhole:
        macs_ += arch.macs_block_a_per_pixel() * px + arch.macs_block_b_per_pixel() * u.tile.h * u.tile.w;
        break;
      case UnitKind::kBlockB: macs_ += arch.macs_block_b_per_pixel() * (u.p1 - u.p0); break;
      case UnitKind::kTail: macs_ += stem_macs(u.wide) + arch.macs_tail_per_pixel() * px; break;
    }
  }
  left_.resize(phases_.size());
  for (size_t i = 0; i < phases_.size(); ++i) left_[i] = phases_[i].count;
  gathered_.assign(units_.size(), 0);
  patches_.assign(recompute_ ? units_.size() : 0, {});
  group_state_.assign(groups_, 0);
}

void Job::begin_group(size_t g) {
  if (group_state_[g] != 0) return;
  const size_t nf = net_.features(), cc = net_.cat_channels();
  for (auto& p : passes_) {
    if (p->group != g) continue;
    const size_t P = p->bh * p->bw;
    // (x and acc may live outside; cat, whose sums are taken in place, here.)
    p->x.allocate(P * nf, half_, options_.external);
    if (!recompute_) p->cat.allocate(P * cc, half_, nullptr);
    if (recompute_ && net_.has_attention()) p->cells.assign(cells(p->bh) * cells(p->bw) * 4 * cc, 0.f);
    if (net_.has_fusion()) {
      p->acc.allocate(P * nf, half_, options_.external);
      p->acc.zero(P * nf);
    }
  }
  group_state_[g] = 1;
}

UnitData Job::gather(size_t i) {
  const Unit& u = units_.at(i);
  Pass& p = *passes_[u.pass];
  if (u.phase > 0 && left_[u.phase - 1] != 0) throw Error("unit gathered before the phase before it finished");
  if (streamed(u)) throw Error("a streamed block runs in its job's own instance (Job::run_here), not gathered");
  begin_group(p.group);
  gathered_[i] = 1;
  const pthreadpool_t pool = net_.pool();
  const size_t S = net_.stem_stride(), nf = net_.features(), cc = net_.cat_channels(), r = net_.upsample();
  UnitData d;
  UnitData::Header& h = d.head;
  h.kind = uint32_t(u.kind);
  h.block = uint32_t(u.block);
  h.h = uint32_t(u.crop.h);
  h.w = uint32_t(u.crop.w);
  h.cy = uint32_t(u.tile.y - u.crop.y);
  h.cx = uint32_t(u.tile.x - u.crop.x);
  h.ch = uint32_t(u.tile.h);
  h.cw = uint32_t(u.tile.w);
  // The input pixels under body rect c.
  auto input_under = [&](const Rect& c, Floats* out) {
    const size_t iy = c.y * S, ix = c.x * S;
    const Rect in{iy, ix, std::min(p.h, (c.y + c.h) * S) - iy, std::min(p.w, (c.x + c.w) * S) - ix};
    if (p.rgb.size() + p.rgb8.size() != p.rgb_floats) throw Error("a job planned without pixels cannot run");
    if (p.eight)
      take(p.rgb8.data(), p.w, in, 3, out, pool);
    else
      take(p.rgb.data(), p.w, in, 3, out, pool);
    h.ih = uint32_t(in.h);
    h.iw = uint32_t(in.w);
  };
  switch (u.kind) {
    case UnitKind::kStem: input_under(u.crop, &d.a[0]); break;  // (input_under: take from rgb)
    case UnitKind::kBlockA:
    case UnitKind::kBlockSums: take(p.x, p.bw, u.crop, nf, &d.a[0], pool); break;
    case UnitKind::kBlockWhole: {
      d.a[0].assign(p.z.begin(), p.z.end());
      take(p.x, p.bw, u.crop, nf, &d.a[1], pool);
      // The old values under tiles that were written since this phase began (plan.h).
      for (const Patch& old : patches_[i]) {
        copy_rect(old.v.data(), old.r.w, 0, 0, d.a[1].data(), u.crop.w, old.r.y - u.crop.y, old.r.x - u.crop.x, old.r.h,
                  old.r.w, nf, pool);
      }
      std::vector<Patch>().swap(patches_[i]);
      if (net_.has_fusion()) take(p.acc, p.bw, u.tile, nf, &d.a[2], pool);
      break;
    }
    case UnitKind::kBlockB: {
      const size_t n = u.p1 - u.p0;
      h.pixels = uint32_t(n);
      d.a[0].assign(p.z.begin(), p.z.end());
      d.a[1].resize(n * cc);
      p.cat.read_pixels(u.p0, u.p1, cc, d.a[1].data(), pool);
      d.a[2].resize(n * nf);
      p.x.read_pixels(u.p0, u.p1, nf, d.a[2].data(), pool);
      if (net_.has_fusion()) {
        d.a[3].resize(n * nf);
        p.acc.read_pixels(u.p0, u.p1, nf, d.a[3].data(), pool);
      }
      break;
    }
    case UnitKind::kTail: {
      begin_output();
      take(net_.has_fusion() ? p.acc : p.x, p.bw, u.crop, nf, &d.a[0], pool);
      input_under(u.wide, &d.a[1]);
      h.ay = uint32_t(u.crop.y - u.wide.y);
      h.ax = uint32_t(u.crop.x - u.wide.x);
      const size_t oh = p.h * net_.info().scale, ow = p.w * net_.info().scale;
      h.oh = uint32_t(std::min(oh, (u.tile.y + u.tile.h) * r) - u.tile.y * r);
      h.ow = uint32_t(std::min(ow, (u.tile.x + u.tile.w) * r) - u.tile.x * r);
      break;
    }
  }
  return d;
}

Rect Job::scatter(size_t i, const UnitData& d) {
  const Unit& u = units_.at(i);
  Pass& p = *passes_[u.pass];
  if (group_state_[p.group] != 1 || left_[u.phase] == 0) throw Error("unit scattered out of order");
  const pthreadpool_t pool = net_.pool();
  const size_t nf = net_.features(), cc = net_.cat_channels(), r = net_.upsample();
  auto expect = [](bool ok) {
    if (!ok) throw Error("unit result does not match its unit");
  };
  expect(d.head.kind == uint32_t(u.kind));
  Rect done;
  switch (u.kind) {
    case UnitKind::kStem:
      expect(d.a[0].size() == u.tile.h * u.tile.w * nf);
      put(d.a[0].data(), u.tile, nf, p.x, p.bw, pool);
      break;
    case UnitKind::kBlockA:
      expect(d.a[0].size() == u.tile.h * u.tile.w * cc);
      put(d.a[0].data(), u.tile, cc, p.cat, p.bw, pool);
      break;
    case UnitKind::kBlockSums: {
      const size_t rows = cells(u.tile.h), cols = cells(u.tile.w), grid = cells(p.bw), C4 = 4 * cc;
      expect(d.a[0].size() == rows * cols * C4 && u.tile.y % kCell == 0 && u.tile.x % kCell == 0);
      for (size_t k = 0; k < rows; ++k) {
        std::copy_n(d.a[0].data() + k * cols * C4, cols * C4,
                    p.cells.data() + ((u.tile.y / kCell + k) * grid + u.tile.x / kCell) * C4);
      }
      break;
    }
    case UnitKind::kBlockWhole: {
      const size_t n = u.tile.h * u.tile.w;
      expect(d.a[0].size() == n * nf && d.a[1].size() == (net_.has_fusion() ? n * nf : 0));
      keep_patches(i);
      put(d.a[0].data(), u.tile, nf, p.x, p.bw, pool);
      if (net_.has_fusion()) put(d.a[1].data(), u.tile, nf, p.acc, p.bw, pool);
      break;
    }
    case UnitKind::kBlockB:
      expect(d.a[0].size() == (u.p1 - u.p0) * nf && d.a[1].size() == (net_.has_fusion() ? (u.p1 - u.p0) * nf : 0));
      p.x.write_pixels(d.a[0].data(), u.p0, u.p1, nf, pool);
      if (net_.has_fusion()) p.acc.write_pixels(d.a[1].data(), u.p0, u.p1, nf, pool);
      break;
    case UnitKind::kTail: {
      const size_t oh = d.head.oh, ow = d.head.ow, y0 = u.tile.y * r, x0 = u.tile.x * r;
      expect(d.a[0].size() == oh * ow * 3 && d.head.cy == u.tile.y - u.crop.y && d.head.cx == u.tile.x - u.crop.x);
      // The part of this tile's output that the pass keeps, and where it goes.
      const size_t ky0 = std::max(y0, p.keep.y), ky1 = std::min(y0 + oh, p.keep.y + p.keep.h);
      const size_t kx0 = std::max(x0, p.keep.x), kx1 = std::min(x0 + ow, p.keep.x + p.keep.w);
      if (ky0 >= ky1 || kx0 >= kx1) break;
      done = Rect{p.oy + ky0 - p.keep.y, p.ox + kx0 - p.keep.x, ky1 - ky0, kx1 - kx0};
      const size_t C = size_t(out_c_);
      const bool eight = options_.rgba8;
      // The output's rows of `done` (external: a copy of them here, read, changed, written back:
      // the planes of a grey or alpha image each write their own channels).
      std::vector<uint8_t> outside;
      if (out_id_ >= 0) {
        outside.resize(done.h * done.w * 4);
        read_rgba8(done, outside.data());
      }
      uint8_t* out8 = !eight ? nullptr : out_id_ >= 0 ? outside.data() : out8_.data() + (done.y * out_w_ + done.x) * C;
      float* outf = eight ? nullptr : outf_.data() + (done.y * out_w_ + done.x) * C;
      const size_t stride = out_id_ >= 0 ? done.w : out_w_;
      ops::parallel_rows(pool, ky1 - ky0, copy_grain((kx1 - kx0) * 3), [&](size_t a, size_t b) {
        for (size_t y = ky0 + a; y < ky0 + b; ++y) {
          const float* src = d.a[0].data() + ((y - y0) * ow + (kx0 - x0)) * 3;
          const size_t row = (y - ky0) * stride;
          for (size_t k = 0; k < kx1 - kx0; ++k, src += 3) {
            const size_t o = (row + k) * C;
            if (p.role == Pass::kColour) {
              for (size_t c = 0; c < 3; ++c) {
                if (eight)
                  out8[o + c] = to_u8(src[c]);
                else
                  outf[o + c] = src[c];
              }
              continue;
            }
            const float m = (src[0] + src[1] + src[2]) / 3.f;
            if (p.role == Pass::kAlpha) {
              const float a8 = std::min(1.f, std::max(0.f, m));
              if (eight)
                out8[o + 3] = to_u8(a8);
              else
                outf[o + C - 1] = a8;
            } else if (eight) {
              out8[o] = out8[o + 1] = out8[o + 2] = to_u8(m);
            } else {
              for (size_t c = 0; c < (C <= 2 ? 1 : 3); ++c) outf[o + c] = m;
            }
          }
        }
      });
      if (out_id_ >= 0)
        options_.external->write_rows(out_id_, (uint64_t(done.y) * out_w_ + done.x) * 4, done.w * 4,
                                      uint64_t(out_w_) * 4, done.h, outside.data());
      break;
    }
  }
  if (--left_[u.phase] == 0) end_phase(u.phase);
  return done;
}

// Before x changes under unit i's tile (recomputed blocks, plan.h): its old values for the crops
// of its phase that still have to be gathered or streamed.
void Job::keep_patches(size_t i) {
  const Unit& u = units_[i];
  const Phase& ph = phases_[u.phase];
  Pass& p = *passes_[u.pass];
  for (size_t j = ph.begin; j < ph.begin + ph.count; ++j) {
    if (j == i || gathered_[j] || units_[j].pass != u.pass) continue;
    const Rect r = intersect(units_[j].crop, u.tile);
    if (r.empty()) continue;
    Patch old{r, {}};
    take(p.x, p.bw, r, net_.features(), &old.v, net_.pool());
    patches_[j].push_back(std::move(old));
  }
}

void Job::end_phase(size_t phase) {
  const Unit& first = units_[phases_[phase].begin];
  const size_t g = passes_[first.pass]->group;
  if ((first.kind == UnitKind::kBlockA || first.kind == UnitKind::kBlockSums) && net_.has_attention()) {
    // The barrier: each pass's attention weights from its whole map, summed by cells (plan.h):
    // from the map, or as the units of a recomputed block gave them.
    for (auto& p : passes_) {
      if (p->group != g) continue;
      const size_t P = p->bh * p->bw, cc = net_.cat_channels(), n = cells(p->bh) * cells(p->bw);
      if (first.kind == UnitKind::kBlockA) {
        p->cells.resize(n * 4 * cc);
        if (p->cat.half)
          cell_sums(p->cat.h.data(), p->bw, p->bh, p->bw, cc, p->cells.data(), net_.pool());
        else
          cell_sums(p->cat.f.data(), p->bw, p->bh, p->bw, cc, p->cells.data(), net_.pool());
      }
      p->z = net_.stage_attention(first.block, add_cells(p->cells.data(), n, cc, P));
      if (first.kind == UnitKind::kBlockA) std::vector<float>().swap(p->cells);
    }
  }
  if ((first.kind == UnitKind::kBlockB || first.kind == UnitKind::kBlockWhole) && first.block + 1 == net_.blocks()) {
    // The tail reads acc alone (IMDN; else x): the rest goes back before the output is made.
    for (auto& p : passes_) {
      if (p->group != g) continue;
      p->cat.release();
      if (net_.has_fusion()) p->x.release();
    }
  }
  if (first.kind == UnitKind::kTail) {
    for (auto& p : passes_) {
      if (p->group != g) continue;
      p->x.release();
      p->cat.release();
      p->acc.release();
      std::vector<float>().swap(p->rgb);
      std::vector<uint8_t>().swap(p->rgb8);
      std::vector<float>().swap(p->cells);
    }
    group_state_[g] = 2;
  }
}

// Blocks streamed: the rows of a band for strips w wide. Each step of a band is one call to the
// pool, of (band / 4) x (w / 128) blocks of Winograd tiles: at least two a thread (kBand, 8 rows,
// gives a 1024-wide strip 16), and no more rows than that needs (the rings grow with them).
size_t Job::band(size_t w) const {
  const size_t threads = net_.pool() ? std::max<size_t>(1, pthreadpool_get_threads_count(net_.pool())) : 1;
  const size_t blocks = std::max<size_t>(1, (w + 127) / 128), rows = 4 * ((2 * threads + blocks - 1) / blocks);
  return std::min<size_t>(64, std::max(kBand, rows));
}

bool Job::streamed(const Unit& u) const {
  return strip_ != 0 &&
         (u.kind == UnitKind::kBlockA || u.kind == UnitKind::kBlockSums || u.kind == UnitKind::kBlockWhole);
}

size_t Job::weight(size_t i) const {
  const Unit& u = units_.at(i);
  return streamed(u) ? (u.crop.h + kTickRows - 1) / kTickRows : 1;
}

// A block's unit streamed down its strip (plan.h), rows read from x as the steps need them and
// their results used as they come: the concatenation into its map (kBlockA), the attention sums
// of its cells (kBlockSums), or the pointwise rest, x and acc written back in place (kBlockWhole);
// tick(k) after its first k * kTickRows rows.
void Job::stream_unit(size_t i, const std::function<void(size_t)>& tick) {
  const Unit& u = units_.at(i);
  if (u.phase > 0 && left_[u.phase - 1] != 0) throw Error("unit run before the phase before it finished");
  if (left_[u.phase] == 0 || gathered_[i]) throw Error("unit run twice");
  Pass& p = *passes_[u.pass];
  begin_group(p.group);
  gathered_[i] = 1;
  const pthreadpool_t pool = net_.pool();
  const size_t nf = net_.features(), cc = net_.cat_channels(), H = u.crop.h, W = u.crop.w;
  const size_t cx = u.tile.x - u.crop.x, cw = u.tile.w;
  const bool whole = u.kind == UnitKind::kBlockWhole, inside = cw != W;
  if (u.crop.y != 0 || H != p.bh || u.tile.y != 0 || u.tile.h != H)
    throw Error("a streamed block's strip is not whole");
  if (whole) keep_patches(i);
  std::vector<Patch> mine;
  if (!patches_.empty()) mine.swap(patches_[i]);
  auto read = [&](size_t y0, size_t y1, float* dst) {
    net_.timed("stream: read x", [&] { p.x.read(p.bw, y0, u.crop.x, dst, W, 0, 0, y1 - y0, W, nf, pool); });
    for (const Patch& old : mine) {
      const size_t a = std::max(y0, old.r.y), b = std::min(y1, old.r.y + old.r.h);
      if (a < b)
        copy_rect(old.v.data(), old.r.w, a - old.r.y, 0, dst, W, a - y0, old.r.x - u.crop.x, b - a, old.r.w, nf, pool);
    }
  };
  // kBlockSums: each cell column's sums in double over the rows so far of its cells' row, as
  // cell_sums adds them (row by row, pixel by pixel), finished at the cells' last row.
  const size_t cols = cells(cw), grid = cells(p.bw), C4 = 4 * cc;
  std::vector<double> sums(whole ? 0 : cols * cc * 2, 0.0);
  size_t ticked = 0;
  auto emit = [&](size_t y0, size_t y1, float* cat, float* x) {
    const size_t n = (y1 - y0) * cw;
    if (u.kind == UnitKind::kBlockA) {
      net_.timed("stream: write cat", [&] { p.cat.write(cat, W, 0, cx, p.bw, y0, u.tile.x, y1 - y0, cw, cc, pool); });
    } else if (!whole) {
      net_.timed("stream: sums", [&] {
        ops::parallel_rows(pool, cols, 1, [&](size_t j0, size_t j1) {
          for (size_t j = j0; j < j1; ++j) {
            double *s = sums.data() + j * cc * 2, *q = s + cc;
            const size_t x0 = cx + j * kCell, x1 = cx + std::min(cw, (j + 1) * kCell);
            for (size_t y = y0; y < y1; ++y) {
              add_row(cat + ((y - y0) * W + x0) * cc, x1 - x0, cc, s, q);
              if ((y + 1) % kCell == 0 || y + 1 == H) {
                finish_cell(s, q, cc, p.cells.data() + ((y / kCell) * grid + u.tile.x / kCell + j) * C4);
                std::fill(s, s + 2 * cc, 0.0);
              }
            }
          }
        });
      });
    } else {
      // The same pointwise arithmetic as kBlockB's, on the core's rows.
      float *core_cat = cat, *core_x = x;
      if (inside) {
        core_cat = scratch(0, n * cc);
        core_x = scratch(1, n * nf);
        copy_rect(cat, W, 0, cx, core_cat, cw, 0, 0, y1 - y0, cw, cc, pool);
        copy_rect(x, W, 0, cx, core_x, cw, 0, 0, y1 - y0, cw, nf, pool);
      }
      float* acc = nullptr;
      if (net_.has_fusion()) {
        acc = scratch(2, n * nf);
        net_.timed("stream: read acc", [&] { p.acc.read(p.bw, y0, u.tile.x, acc, cw, 0, 0, y1 - y0, cw, nf, pool); });
      }
      net_.stage_block_b(u.block, p.z.empty() ? nullptr : p.z.data(), core_cat, core_x, acc, n);
      net_.timed("stream: write x, acc", [&] {
        p.x.write(core_x, cw, 0, 0, p.bw, y0, u.tile.x, y1 - y0, cw, nf, pool);
        if (acc) p.acc.write(acc, cw, 0, 0, p.bw, y0, u.tile.x, y1 - y0, cw, nf, pool);
      });
    }
    const size_t k = y1 == H ? (H + kTickRows - 1) / kTickRows : y1 / kTickRows;
    if (tick && k > ticked) tick(ticked = k);
  };
  net_.stream_block(u.block, H, W, band(W), read, emit);
  if (--left_[u.phase] == 0) end_phase(u.phase);
}

Rect Job::run_here(size_t i) {
  const Unit& u = units_.at(i);
  if (streamed(u)) {
    stream_unit(i, nullptr);
    return {};
  }
  // (The tail's crop is modified; recomputed blocks keep patches: both through their unit data.)
  if (u.kind == UnitKind::kTail || u.kind == UnitKind::kBlockSums || u.kind == UnitKind::kBlockWhole)
    return scatter(i, run_unit(net_, gather(i)));
  if (u.phase > 0 && left_[u.phase - 1] != 0) throw Error("unit run before the phase before it finished");
  if (left_[u.phase] == 0) throw Error("unit run twice");
  Pass& p = *passes_[u.pass];
  begin_group(p.group);
  const size_t nf = net_.features(), cc = net_.cat_channels();
  const pthreadpool_t pool = net_.pool();
  const float* z = p.z.empty() ? nullptr : p.z.data();
  if (u.kind == UnitKind::kBlockB && !half_) {
    // Pointwise: in place on the maps (the same arithmetic as a gathered unit, no copies).
    net_.stage_block_b(u.block, z, p.cat.f.data() + u.p0 * cc, p.x.f.data() + u.p0 * nf,
                       net_.has_fusion() ? p.acc.f.data() + u.p0 * nf : nullptr, u.p1 - u.p0);
  } else if (u.kind == UnitKind::kBlockB) {
    // Float16 maps: widened a cache-sized run of pixels at a time (pointwise, so the same values).
    const bool fusion = net_.has_fusion();
    for (size_t a = u.p0; a < u.p1; a += kHalfChunk) {
      const size_t b = std::min(u.p1, a + kHalfChunk), n = b - a;
      float *cat = scratch(0, n * cc), *x = scratch(1, n * nf), *acc = fusion ? scratch(2, n * nf) : nullptr;
      p.cat.read_pixels(a, b, cc, cat, pool);
      p.x.read_pixels(a, b, nf, x, pool);
      if (fusion) p.acc.read_pixels(a, b, nf, acc, pool);
      net_.stage_block_b(u.block, z, cat, x, acc, n);
      p.x.write_pixels(x, a, b, nf, pool);
      if (fusion) p.acc.write_pixels(acc, a, b, nf, pool);
    }
  } else {
    // Stem and block A read their crop and write their core straight from and to the maps where
    // the rows allow (a crop of whole rows is contiguous: a single tile copies nothing), else
    // through this thread's scratch; the same arithmetic as a gathered unit. (Gathered, one tile
    // of 512x512 at x4 spent 0.7 s of 6.7 in copies and fresh pages, natively.)
    // (Float16 maps: always through the scratch.)
    const size_t C = u.kind == UnitKind::kStem ? nf : cc;
    Map& map = u.kind == UnitKind::kStem ? p.x : p.cat;
    const bool rows = u.crop.x == 0 && u.crop.w == p.bw && !half_;
    const bool direct_out = rows && u.tile.y == u.crop.y && u.tile.h == u.crop.h;
    float* out = direct_out ? map.f.data() + u.crop.y * p.bw * C : scratch(0, u.crop.h * u.crop.w * C);
    if (u.kind == UnitKind::kStem) {
      UnitData d = gather(i);  // the RGB crop: 3 channels, small
      net_.stage_stem(d.a[0].data(), d.head.ih, d.head.iw, out);
    } else {
      const float* in = rows ? p.x.f.data() + u.crop.y * p.bw * nf : nullptr;
      if (!rows) {
        float* crop = scratch(1, u.crop.h * u.crop.w * nf);
        p.x.read(p.bw, u.crop.y, u.crop.x, crop, u.crop.w, 0, 0, u.crop.h, u.crop.w, nf, pool);
        in = crop;
      }
      net_.stage_block_a(u.block, in, u.crop.h, u.crop.w, out);
    }
    if (!direct_out) {
      map.write(out, u.crop.w, u.tile.y - u.crop.y, u.tile.x - u.crop.x, p.bw, u.tile.y, u.tile.x, u.tile.h, u.tile.w,
                C, pool);
    }
  }
  if (--left_[u.phase] == 0) end_phase(u.phase);
  return {};
}

void Job::run(const std::function<void(size_t, size_t, const Rect&)>& progress) {
  // (Progress counts units, a streamed one as one step per kTickRows rows.)
  size_t total = 0, done = 0;
  for (size_t i = 0; i < units_.size(); ++i) total += weight(i);
  for (size_t i = 0; i < units_.size(); ++i) {
    const size_t base = done;
    Rect rect;
    if (streamed(units_[i])) {
      stream_unit(i, [&](size_t k) {
        if (progress && k < weight(i)) progress(base + k, total, Rect{});
      });
    } else {
      rect = run_here(i);
    }
    done = base + weight(i);
    if (progress) progress(done, total, rect);
  }
}

std::vector<float> run_raw(Network& net, const float* rgb, size_t h, size_t w, size_t tile,
                           const std::function<void(size_t, size_t)>& progress, size_t* oh, size_t* ow) {
  Image in;
  in.width = w;
  in.height = h;
  in.channels = 3;
  in.data.assign(rgb, rgb + h * w * 3);
  JobOptions o;
  o.raw = true;
  o.tile = tile;
  Job job(net, in, o);
  std::function<void(size_t, size_t, const Rect&)> units;
  if (progress) units = [&](size_t done, size_t total, const Rect&) { progress(done, total); };
  job.run(units);
  *oh = job.height();
  *ow = job.width();
  return job.take_image().data;
}

void Job::read_rgba8(const Rect& r, uint8_t* dst) const {
  if (out_id_ < 0) {
    for (size_t y = 0; y < r.h; ++y)
      std::copy_n(out8_.data() + ((r.y + y) * out_w_ + r.x) * 4, r.w * 4, dst + y * r.w * 4);
    return;
  }
  options_.external->read_rows(out_id_, (uint64_t(r.y) * out_w_ + r.x) * 4, r.w * 4, uint64_t(out_w_) * 4, r.h, dst);
}

Image Job::take_image() {
  Image out;
  out.width = out_w_;
  out.height = out_h_;
  out.channels = out_c_;
  out.bit_depth = 8;
  out.data = std::move(outf_);
  return out;
}

}  // namespace imdn
