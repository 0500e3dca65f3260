// A tiled plan's units and phases (build_units), then what they hold at once and compute
// (account_memory): the steps of plan_job's search under the memory limit (plan.cpp).
#include <algorithm>
#include <functional>

#include "plan.h"

namespace imdn {

namespace {

constexpr size_t kStemHalo = 2;             // body pixels: covers every stem (one 3x3 at body
                                            // resolution, or one at twice it before a stride-2 one,
                                            // or two stride-2 ones), all direct (winograd_fits:
                                            // 3 input channels or stride 2, network.cpp)
constexpr size_t kChunk = size_t(1) << 14;  // pixels per pointwise unit (4 MiB of a 64-channel map)
constexpr size_t kHalfChunk = 1024;         // pixels of a float16 map widened at a time (job.cpp)
constexpr size_t kTailTile = 128;           // body pixels: the tail's tiles at most (64 with
                                            // float16 maps: memory is short, and the tail is 9%
                                            // of the compute)

using Unit = Plan::Unit;

// The units of one group's passes, phase by phase.
void build_group(Network& net, Plan& plan, size_t g) {
  const size_t nb = net.blocks(), wt = net.winograd_tile(),
               halo_a = chain_halo(net.architecture().block.steps.size(), wt),
               halo_tail = chain_halo(2, wt);  // tail: lr (3x3 or 1x1), up
  const size_t tail_tile = plan.half ? kTailTile / 2 : kTailTile;
  auto phase = [&](const std::function<void(size_t, PassPlan&)>& add_units) {
    Plan::Phase ph;
    ph.begin = plan.units.size();
    for (size_t i = 0; i < plan.passes.size(); ++i)
      if (plan.passes[i].group == g) add_units(i, plan.passes[i]);
    ph.count = plan.units.size() - ph.begin;
    ph.pointwise = ph.count > 0 && traits(plan.units[ph.begin].kind).pointwise;
    plan.phases.push_back(ph);
  };
  auto unit = [&](UnitKind kind, size_t pass, size_t block, const Rect& t, const Rect& c, const Rect& wide) {
    plan.units.push_back(Unit{kind, pass, block, plan.phases.size(), t, c, wide});
  };
  auto blocks = [&](const PassPlan& p) -> const std::vector<Rect>& { return plan.strip ? p.strips : p.tiles; };
  phase([&](size_t i, PassPlan& p) {
    for (const Rect& t : p.tiles)
      unit(UnitKind::kStem, i, 0, t, grow(t, kStemHalo, p.bh, p.bw, p.step_h, p.step_w), {});
  });
  for (size_t b = 0; b < nb; ++b) {
    if (plan.recompute) {
      for (UnitKind kind : {UnitKind::kBlockSums, UnitKind::kBlockWhole}) {
        if (kind == UnitKind::kBlockSums && !net.has_attention()) continue;
        phase([&](size_t i, PassPlan& p) {
          for (const Rect& t : blocks(p))
            unit(kind, i, b, t, grow(t, halo_a, p.bh, p.bw, p.step_h, p.step_w, false), {});
        });
      }
      continue;
    }
    phase([&](size_t i, PassPlan& p) {
      for (const Rect& t : blocks(p))
        unit(UnitKind::kBlockA, i, b, t, grow(t, halo_a, p.bh, p.bw, p.step_h, p.step_w, !plan.strip), {});
    });
    phase([&](size_t i, PassPlan& p) {
      const size_t P = p.bh * p.bw, pool = plan.options.min_tiles > 1 ? 2 * plan.options.min_tiles : 1,
                   chunks = std::min(P, std::max((P + kChunk - 1) / kChunk, pool));
      for (size_t k = 0; k < chunks; ++k) {
        unit(UnitKind::kBlockB, i, b, {}, {}, {});
        plan.units.back().p0 = k * P / chunks;
        plan.units.back().p1 = (k + 1) * P / chunks;
      }
    });
  }
  // The tail in tiles of at most tail_tile: its crops hold the most channels per pixel (features,
  // the stem's again, the up convolution's 3 r^2), and its halo is small.
  phase([&](size_t i, PassPlan& p) {
    const std::vector<Rect> tail_tiles =
        p.step_h > tail_tile || p.step_w > tail_tile ? plan_tiles(p.bh, p.bw, tail_tile, 1) : p.tiles;
    const size_t sh = tail_tiles.front().h, sw = tail_tiles.front().w;
    for (const Rect& t : tail_tiles) {
      const Rect c = grow(t, halo_tail, p.bh, p.bw, sh, sw);
      unit(UnitKind::kTail, i, 0, t, c, grow(c, kStemHalo, p.bh, p.bw, c.h, c.w));
      ++plan.tiles;
    }
  });
}

// The old x a recomputed block keeps for units not yet gathered (Job's patches), floats. Units
// are gathered in raster order, so a unit not yet gathered overlaps tiles written before it only
// with the strips of its crop above and left of its tile, and those units lie within a row of
// tiles after the first not gathered: a row's upper strips, and two units' both (the one gathered
// next, and one more for a pool's units run ahead). (Every block's units have the first's crops.)
uint64_t patch_floats(const Plan& plan, size_t pass, size_t nf) {
  uint64_t row = 0, rows = 0, both = 0;
  size_t row_y = 0;
  for (const Unit& u : plan.units) {
    if (u.kind != UnitKind::kBlockWhole || u.block != 0 || u.pass != pass) continue;
    if (u.tile.y != row_y) rows = std::max(rows, row), row = 0, row_y = u.tile.y;
    const uint64_t above = uint64_t(u.crop.w) * (u.tile.y - u.crop.y);
    row += above;
    both = std::max(both, above + uint64_t(u.tile.x - u.crop.x) * u.crop.h);
  }
  rows = std::max(rows, row);
  return (rows + 2 * both) * nf;
}

// What the maps, the output and the input planes hold at most at once: per group, its maps
// through the blocks (and the output of the groups before), then the map the tail reads and the
// output.
uint64_t map_bytes(Network& net, const Plan& plan) {
  const size_t nf = net.features(), cc = net.cat_channels();
  const uint64_t value = plan.half ? sizeof(uint16_t) : sizeof(float);
  const uint64_t out_bytes =
      uint64_t(plan.out_w) * plan.out_h * (plan.options.rgba8 ? 4 : uint64_t(plan.out_c) * sizeof(float));
  uint64_t maps = 0, planes = 0;
  for (size_t g = 0; g < plan.groups; ++g) {
    uint64_t all = 0, tail = 0;
    for (size_t i = 0; i < plan.passes.size(); ++i) {
      const PassPlan& p = plan.passes[i];
      if (p.group != g) continue;
      const uint64_t P = uint64_t(p.bh) * p.bw;
      all += P * (nf + (plan.recompute ? 0 : cc) + (net.has_fusion() ? nf : 0)) * value;
      if (plan.recompute && net.has_attention()) all += uint64_t(cells(p.bh)) * cells(p.bw) * 4 * cc * sizeof(float);
      if (plan.recompute) all += patch_floats(plan, i, nf) * sizeof(float);
      tail += P * nf * value;
      planes += p.values() * (p.eight ? 1 : sizeof(float));
    }
    maps = std::max({maps, all + (g > 0 ? out_bytes : 0), tail + out_bytes});
  }
  return maps + planes;
}

// One unit's scratch at a time, but each buffer stays as large as its largest use (the network's,
// the workspace, a gathered unit's arrays): counted as the sum of each kind's largest unit, an
// upper bound.
uint64_t scratch_bytes(Network& net, const Plan& plan) {
  const size_t nf = net.features(), cc = net.cat_channels(), r = net.upsample(), S = net.stem_stride();
  uint64_t kind_max[7] = {0, 0, 0, 0, 0, 0, 0};
  for (const Unit& u : plan.units) {
    const uint64_t px = uint64_t(u.crop.h) * u.crop.w, wide = uint64_t(u.wide.h) * u.wide.w;
    const bool streamed = plan.streamed(u);
    const uint64_t rings = streamed ? net.stream_bytes(u.crop.w, plan.band(u.crop.w)) / sizeof(float) : 0;
    uint64_t floats = 0;
    switch (u.kind) {
      case UnitKind::kStem: floats = px * (nf + S * S * 3 * 2); break;
      case UnitKind::kBlockA:  // out, crop, the steps' remainders; streamed: the rings
        floats = plan.strip ? rings : px * (cc + nf + 2 * nf);
        break;
      case UnitKind::kBlockSums:
        // (Tiles: kBlockWhole's buffers, on the same crops, are larger.) Streamed: the rings, and
        // a row of cells' sums in double.
        if (plan.strip) floats = rings + cells(u.tile.w) * cc * 4;
        break;
      case UnitKind::kBlockWhole:  // as kBlockA, and the core's cat, x and acc
        floats = px * (cc + nf + 2 * nf) + uint64_t(u.tile.h) * u.tile.w * (cc + 2 * nf);
        // Streamed: the rings, a band of acc, and of the core's cat and x unless the strip is
        // the whole width.
        if (plan.strip) floats = rings + plan.band(u.crop.w) * u.tile.w * (nf + (u.tile.w == u.crop.w ? 0 : cc + nf));
        break;
      case UnitKind::kBlockB:
        floats = std::min<uint64_t>(u.p1 - u.p0, plan.half ? kHalfChunk : kChunk) * (cc + 3 * nf);
        break;
      case UnitKind::kTail:  // the unit's arrays, the stem again, features, up conv, RGB, twice
        floats = px * (nf * 3 + 3 * r * r * 3) + wide * (nf + S * S * 3 * 2);
        break;
    }
    uint64_t& m = kind_max[size_t(u.kind)];
    m = std::max(m, floats * sizeof(float));
  }
  uint64_t scratch = 0;
  for (uint64_t m : kind_max) scratch += m;
  if (plan.half && plan.options.external) {
    // External maps: the staging buffer of their largest read (a unit's crop).
    uint64_t px = 0;
    for (const Unit& u : plan.units)
      px = std::max<uint64_t>(px, uint64_t(plan.streamed(u) ? plan.band(u.crop.w) + 1 : u.crop.h) * u.crop.w);
    scratch += px * nf * sizeof(uint16_t);
  }
  return scratch;
}

uint64_t count_macs(Network& net, const Plan& plan) {
  const Architecture& arch = net.architecture();
  const size_t S = net.stem_stride();
  uint64_t macs = 0;
  for (const Unit& u : plan.units) {
    const PassPlan& p = plan.passes[u.pass];
    auto stem_macs = [&](const Rect& c) {
      return arch.macs_stem(std::min(p.h, (c.y + c.h) * S) - c.y * S, std::min(p.w, (c.x + c.w) * S) - c.x * S);
    };
    const uint64_t px = uint64_t(u.crop.h) * u.crop.w;
    switch (u.kind) {
      case UnitKind::kStem: macs += stem_macs(u.crop); break;
      case UnitKind::kBlockA:
      case UnitKind::kBlockSums: macs += arch.macs_block_a_per_pixel() * px; break;
      case UnitKind::kBlockWhole:
        macs += arch.macs_block_a_per_pixel() * px + arch.macs_block_b_per_pixel() * u.tile.h * u.tile.w;
        break;
      case UnitKind::kBlockB: macs += arch.macs_block_b_per_pixel() * (u.p1 - u.p0); break;
      case UnitKind::kTail: macs += stem_macs(u.wide) + arch.macs_tail_per_pixel() * px; break;
    }
  }
  return macs;
}

}  // namespace

void build_units(Network& net, Plan& plan) {
  plan.units.clear();
  plan.phases.clear();
  plan.tiles = 0;
  for (size_t g = 0; g < plan.groups; ++g) build_group(net, plan, g);
}

void account_memory(Network& net, Plan& plan) {
  plan.memory.bytes = map_bytes(net, plan) + scratch_bytes(net, plan);
  plan.macs = count_macs(net, plan);
}

}  // namespace imdn
