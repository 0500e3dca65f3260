// The planner: a job's passes from the image's shape, then the first plan that fits the memory
// limit among the candidates (map precision, recomputed or kept blocks, streamed strips, tile
// sizes), each tiled and built into units (plan_units.cpp). Pure: no pixels, no allocation of
// anything image-sized.
#include "plan.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace imdn {

namespace {

constexpr size_t kBand = 8;       // blocks streamed: rows a step (Network::stream_block), at
                                  // least: more where threads would wait (Plan::band)
constexpr size_t kTickRows = 64;  // blocks streamed: progress every this many rows

std::string dims(size_t w, size_t h) { return std::to_string(w) + "x" + std::to_string(h); }
std::string mib(uint64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

// IMDN_AS's crop_forward (the authors' test_IMDN_AS.py, shave 32): the side of its four corner
// crops, half the image plus 32, rounded down to a multiple of 4.
size_t as_crop_side(size_t n) { return n / 2 + 32 - (n / 2 + 32) % 4; }

bool whole_network(Network& net, const JobOptions& o) { return !o.exact && net.info().arch != Arch::kIMDN_AS; }

// Whether v is k / 255 for a byte k (8-bit images: their planes are kept as bytes).
bool is_byte(float v) {
  const float k = std::nearbyint(v * 255.f);
  return k >= 0.f && k <= 255.f && float(uint8_t(k)) / 255.f == v;
}

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

void check_job(Network& net, size_t w, size_t h, const JobOptions& o) {
  if (w == 0 || h == 0) throw Error("image is empty (" + dims(w, h) + ")");
  if (o.tile != 0 && o.tile < 8) throw Error("tile size must be at least 8, got " + std::to_string(o.tile));
  if (o.map_bits != 0 && o.map_bits != 16 && o.map_bits != 32)
    throw Error("map precision must be 16 or 32 bits, got " + std::to_string(o.map_bits));
  if (o.recompute < -1 || o.recompute > 1) throw Error("recompute must be -1, 0 or 1");
  output_size(net.info(), w, h, o.target_width, o.target_height);
}

// ---- The image's shape ------------------------------------------------------------------------

ImageShape shape_of(const Image& image, const JobOptions& o) {
  ImageShape s;
  s.width = image.width;
  s.height = image.height;
  s.channels = image.channels;
  const size_t n = image.width * image.height, ch = size_t(image.channels);
  const float* px = image.data.data();
  s.grey = ch <= 2;
  if (!s.grey && !o.raw) {
    s.grey = true;
    for (size_t p = 0; p < n && s.grey; ++p) s.grey = px[p * ch] == px[p * ch + 1] && px[p * ch] == px[p * ch + 2];
  }
  const size_t alpha = (ch == 2 || ch == 4) && !o.raw ? ch - 1 : 0;
  for (size_t p = 0; alpha && p < n && !s.translucent; ++p) s.translucent = px[p * ch + alpha] < 1.f;
  const size_t colours = s.grey ? 1 : 3;
  for (size_t p = 0; p < n && s.eight_colour; ++p)
    for (size_t c = 0; c < colours && s.eight_colour; ++c) s.eight_colour = is_byte(px[p * ch + c]);
  for (size_t p = 0; s.translucent && p < n && s.eight_alpha; ++p) s.eight_alpha = is_byte(px[p * ch + alpha]);
  return s;
}

ImageShape assumed_shape(size_t width, size_t height, int channels) {
  ImageShape s;
  s.width = width;
  s.height = height;
  s.channels = channels;
  s.grey = channels <= 2;
  s.translucent = channels == 2 || channels == 4;
  return s;
}

// ---- Passes -----------------------------------------------------------------------------------

namespace {

void add_pass(Network& net, Plan& plan, PassPlan p) {
  const ModelInfo& info = net.info();
  if (p.h % info.size_multiple || p.w % info.size_multiple) {
    throw Error(std::string(arch_name(info.arch)) + " needs sides that are multiples of " +
                std::to_string(info.size_multiple));
  }
  const size_t S = net.stem_stride();
  p.bh = (p.h + S - 1) / S;
  p.bw = (p.w + S - 1) / S;
  plan.groups = std::max(plan.groups, p.group + 1);
  plan.passes.push_back(std::move(p));
}

// The passes of one plane of an h x w (resized) image: the whole plane; IMDN_AS's corner crops
// or its padded plane; with exact = false, whole-network tiles.
void plan_plane(Network& net, Plan& plan, PassPlan::Role role, bool eight, size_t h, size_t w, size_t group) {
  const ModelInfo& info = net.info();
  const JobOptions& o = plan.options;
  auto pass = [&](size_t sy, size_t sx, size_t ph, size_t pw, Rect keep, size_t oy, size_t ox, size_t g) {
    PassPlan p;
    p.role = role;
    p.eight = eight;
    p.sy = sy, p.sx = sx, p.h = ph, p.w = pw;
    p.keep = keep, p.oy = oy, p.ox = ox;
    p.group = g;
    add_pass(net, plan, std::move(p));
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
          pass(ys[qy], xs[qx], hs, ws, Rect{y0 - ys[qy], x0 - xs[qx], y1 - y0, x1 - x0}, y0, x0, group);
        }
      return;
    }
    pass(0, 0, (h + m - 1) / m * m, (w + m - 1) / m * m, Rect{0, 0, h, w}, 0, 0, group);
    return;
  }
  if (whole_network(net, o)) {
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
      pass(cy, cx, chh, cww, Rect{(c.y - cy) * scale, (c.x - cx) * scale, c.h * scale, c.w * scale}, c.y * scale,
           c.x * scale, group + k++ / std::max<size_t>(1, o.min_tiles));
    }
    return;
  }
  pass(0, 0, h, w, Rect{0, 0, h * scale, w * scale}, 0, 0, group);
}

// A pass's tiles at the plan's tile size, and its strips where blocks stream.
void tile_pass(Network& net, Plan& plan, PassPlan& p) {
  const bool whole = whole_network(net, plan.options);
  const size_t tile = whole ? std::max(p.bh, p.bw) : (plan.options.tile ? plan.options.tile : kDefaultTile);
  const bool on_cells = plan.recompute && net.has_attention();
  p.tiles = plan_tiles(p.bh, p.bw, tile, whole ? 1 : plan.options.min_tiles, on_cells ? kCell : kAlign);
  p.step_h = p.tiles.front().h;
  p.step_w = p.tiles.front().w;
  // Blocks streamed: strips of the whole height, as equal as the cells allow.
  p.strips.clear();
  if (plan.strip) {
    const size_t cols = (p.bw + std::min(plan.strip, p.bw) - 1) / std::min(plan.strip, p.bw);
    const size_t sw = (p.bw + cols - 1) / cols, step = (sw + kCell - 1) / kCell * kCell;
    for (size_t x = 0; x < p.bw; x += step) p.strips.push_back({0, x, p.bh, std::min(step, p.bw - x)});
  }
}

// ---- The search under the memory limit ---------------------------------------------------------

struct Candidate {
  bool half;
  size_t tile;
  bool recompute;
  size_t strip;  // blocks streamed in strips this wide (kWhole: the body's width), or 0
};
constexpr size_t kWhole = size_t(-1);

// The plans to try, in order: float32 maps at the asked tile size where that fits, then at
// smaller tiles (down to 64: halos cost more compute as tiles shrink), then float16 maps, then
// float16 maps with the blocks recomputed (about twice the time). Networks without attention
// (RTC, RTE) always recompute: a block is then one phase, its steps run once, and the
// concatenation map is not needed at all. Where one instance runs the job, blocks stream where
// tiles would cut the image, recomputed ones always (their halos cost twice).
std::vector<Candidate> candidates(Network& net, const Plan& plan) {
  const JobOptions& o = plan.options;
  const size_t asked = o.tile ? o.tile : kDefaultTile;
  const bool whole = whole_network(net, o);
  size_t widest = 0, tallest = 0;
  for (const auto& p : plan.passes) widest = std::max(widest, p.bw), tallest = std::max(tallest, p.bh);
  const bool free = !net.has_attention();  // recomputing costs nothing
  const bool stream = o.executor == Executor::kInstance && net.can_stream() && !whole;
  std::vector<Candidate> out;
  for (int recompute : {0, 1}) {
    if (whole && recompute) continue;
    if ((o.recompute == 1 && !recompute) || (o.recompute == -1 && recompute)) continue;
    if (free && !recompute && o.recompute == 0 && !whole) continue;
    for (int bits : {32, 16}) {
      if (o.map_bits && o.map_bits != bits) continue;
      // (Recomputed blocks are the last resort: float16 unless asked otherwise.)
      if (recompute && !free && o.recompute == 0 && bits == 32 && !o.map_bits) continue;
      // (Float16 maps mean memory is short: their tiles start at 128, whose scratch is a quarter
      // of 256's for a little more compute. Recomputed tiles start at 192, then 160, 128: 13 px of
      // halo a side make crops 1.29x, 1.35x, 1.45x their tile.)
      const bool small = (bits == 16 || (recompute && !free)) && !whole && !o.map_bits && !o.recompute;
      const bool twice = small && recompute && !free;
      const size_t start = small ? std::min<size_t>(asked, twice ? 192 : 128) : asked;
      if (stream && (recompute || widest > start || tallest > start)) {
        // (The stem, all that is still tiled but the tail, at 64 under a tight limit: its halo is
        // 2 px and its work 0.3%.)
        const size_t stem = recompute ? std::min<size_t>(start, 64) : start;
        for (size_t strip : {kWhole, size_t(1024), size_t(512), size_t(256)})
          if ((strip == kWhole || strip < widest) && !o.strip) out.push_back({bits == 16, stem, recompute == 1, strip});
        if (o.strip) out.push_back({bits == 16, stem, recompute == 1, o.strip});
      }
      out.push_back({bits == 16, start, recompute == 1, 0});
      for (size_t t : {size_t(160), size_t(128), size_t(64)}) {
        if (t < start && (t != 160 || twice) && !whole) out.push_back({bits == 16, t, recompute == 1, 0});
      }
    }
  }
  return out;
}

void try_candidate(Network& net, Plan& plan, const Candidate& c) {
  plan.half = c.half;
  plan.recompute = c.recompute;
  plan.strip = c.strip;
  plan.options.tile = c.tile;
  for (auto& p : plan.passes) tile_pass(net, plan, p);
  build_units(net, plan);
  account_memory(net, plan);
}

// The first candidate that fits; where none does, the one that needs least (what the refusal
// names).
void fit_memory(Network& net, Plan& plan) {
  // (never above the network's own limit: what one instance can hold, 3 GiB in 32-bit WebAssembly)
  const uint64_t limit =
      plan.options.memory_limit ? std::min(plan.options.memory_limit, net.memory_limit()) : net.memory_limit();
  const std::vector<Candidate> all = candidates(net, plan);
  uint64_t first = 0, least = ~uint64_t(0);
  size_t smallest = 0;
  for (size_t k = 0; k < all.size(); ++k) {
    try_candidate(net, plan, all[k]);
    if (k == 0) first = plan.memory.bytes;
    if (plan.memory.bytes <= limit) break;
    if (plan.memory.bytes < least) least = plan.memory.bytes, smallest = k;
  }
  if (plan.memory.bytes > limit && smallest + 1 != all.size()) try_candidate(net, plan, all[smallest]);
  JobMemory& m = plan.memory;
  m.limit = limit;
  m.map_bits = plan.half ? 16 : 32;
  m.recompute = plan.recompute;
  m.streamed = plan.strip != 0;
  m.tile = plan.options.tile;
  m.float32_bytes = all.front().half || all.front().recompute ? 0 : first;
  m.fits = m.bytes <= limit;
  if (!m.fits) {
    const std::string how =
        (plan.half ? "float16 maps, tiles of " + std::to_string(plan.options.tile * net.stem_stride()) + " px"
                   : "float32 maps") +
        (plan.recompute ? plan.strip ? ", blocks recomputed and streamed" : ", blocks recomputed" : "");
    m.why = "a " + dims(plan.out_w / net.info().scale, plan.out_h / net.info().scale) + " input needs " + mib(m.bytes) +
            " (" + how + "), over the memory limit of " + mib(limit);
  }
}

}  // namespace

Plan plan_job(Network& net, const ImageShape& shape, const JobOptions& o) {
  if (shape.channels < 1 || shape.channels > 4) throw Error("channels must be 1 to 4");
  check_job(net, shape.width, shape.height, o);
  const ModelInfo& info = net.info();
  const auto [ow, oh] = output_size(info, shape.width, shape.height, o.target_width, o.target_height);
  Plan plan;
  plan.options = o;
  const size_t h = o.target_width ? oh : shape.height, w = o.target_width ? ow : shape.width;
  plan.out_w = w * info.scale;
  plan.out_h = h * info.scale;
  plan.out_c = o.rgba8 ? 4 : o.raw ? 3 : shape.channels;
  plan.fill_alpha = plan.out_c == 4 || plan.out_c == 2;
  plan.threads = net.pool() ? std::max<size_t>(1, pthreadpool_get_threads_count(net.pool())) : 1;
  plan_plane(net, plan, shape.grey ? PassPlan::kGrey : PassPlan::kColour, shape.eight_colour, h, w, 0);
  if (shape.translucent && !o.raw) plan_plane(net, plan, PassPlan::kAlpha, shape.eight_alpha, h, w, plan.groups);
  fit_memory(net, plan);
  return plan;
}

// ---- The plan's own questions --------------------------------------------------------------------

// Each step of a band is one call to the pool, of (band / 4) x (w / 128) blocks of Winograd
// tiles: at least two a thread (kBand, 8 rows, gives a 1024-wide strip 16), and no more rows
// than that needs (the rings grow with them).
size_t Plan::band(size_t w) const {
  const size_t blocks = std::max<size_t>(1, (w + 127) / 128), rows = 4 * ((2 * threads + blocks - 1) / blocks);
  return std::min<size_t>(64, std::max(kBand, rows));
}

bool Plan::streamed(const Unit& u) const { return strip != 0 && traits(u.kind).block_crop; }

size_t Plan::weight(size_t i) const {
  const Unit& u = units.at(i);
  return streamed(u) ? (u.crop.h + kTickRows - 1) / kTickRows : 1;
}

}  // namespace imdn
