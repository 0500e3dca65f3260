// Blocks streamed (docs/plan.md): a block's unit run down its strip of the whole height by
// Network::stream_block, rows read from x as the steps need them and their results used as they
// come: the concatenation into its map (kBlockA), the attention sums of its cells (kBlockSums), or
// the pointwise rest, x and acc written back in place (kBlockWhole).
#include <algorithm>

#include "attention_sums.h"
#include "job.h"

namespace imdn {

namespace {

constexpr size_t kTickRows = 64;  // progress every this many rows (Plan::weight)

// A strip's geometry: rows [0, H) of W columns from x of the map; its core, cw columns from cx.
struct Strip {
  size_t H, W, cx, cw, map_w, x0;  // x0: the core's column in the map
};

// kBlockSums: rows [y0, y1) of the concatenation (W wide) into each cell column's running sums
// in double (sums: 2 * cc a column), as cell_sums adds them (row by row, pixel by pixel), each
// cell finished into `cells` (rows of the map's cells) at its last row.
void add_band_sums(const Strip& s, size_t y0, size_t y1, const float* cat, size_t cc, std::vector<double>& sums,
                   float* cells_out, pthreadpool_t pool) {
  const size_t cols = cells(s.cw), grid = cells(s.map_w), C4 = 4 * cc;
  ops::parallel_rows(pool, cols, 1, [&](size_t j0, size_t j1) {
    for (size_t j = j0; j < j1; ++j) {
      double *sum = sums.data() + j * cc * 2, *sq = sum + cc;
      const size_t x0 = s.cx + j * kCell, x1 = s.cx + std::min(s.cw, (j + 1) * kCell);
      for (size_t y = y0; y < y1; ++y) {
        add_row(cat + ((y - y0) * s.W + x0) * cc, x1 - x0, cc, sum, sq);
        if ((y + 1) % kCell == 0 || y + 1 == s.H) {
          finish_cell(sum, sq, cc, cells_out + ((y / kCell) * grid + s.x0 / kCell + j) * C4);
          std::fill(sum, sum + 2 * cc, 0.0);
        }
      }
    }
  });
}

// kBlockWhole: the same pointwise arithmetic as kBlockB's, on the core's rows [y0, y1); x and acc
// written back.
void band_rest(Network& net, size_t block, const Strip& s, size_t y0, size_t y1, float* cat, float* x, Map& xmap,
               Map& accmap, const std::vector<float>& z) {
  const size_t nf = net.features(), cc = net.cat_channels(), n = (y1 - y0) * s.cw;
  const pthreadpool_t pool = net.pool();
  Workspace& ws = net.workspace();
  float *core_cat = cat, *core_x = x;
  if (s.cw != s.W) {
    core_cat = ws.get(0, n * cc);
    core_x = ws.get(1, n * nf);
    copy_rect(cat, s.W, 0, s.cx, core_cat, s.cw, 0, 0, y1 - y0, s.cw, cc, pool);
    copy_rect(x, s.W, 0, s.cx, core_x, s.cw, 0, 0, y1 - y0, s.cw, nf, pool);
  }
  float* acc = nullptr;
  if (net.has_fusion()) {
    acc = ws.get(2, n * nf);
    net.timed("stream: read acc", [&] { accmap.read(s.map_w, y0, s.x0, acc, s.cw, 0, 0, y1 - y0, s.cw, nf, pool); });
  }
  net.stage_block_b(block, z.empty() ? nullptr : z.data(), core_cat, core_x, acc, n);
  net.timed("stream: write x, acc", [&] {
    xmap.write(core_x, s.cw, 0, 0, s.map_w, y0, s.x0, y1 - y0, s.cw, nf, pool);
    if (acc) accmap.write(acc, s.cw, 0, 0, s.map_w, y0, s.x0, y1 - y0, s.cw, nf, pool);
  });
}

}  // namespace

// tick(k) after the unit's first k * kTickRows rows.
void Job::stream_unit(size_t i, const std::function<void(size_t)>& tick) {
  const Unit& u = plan_.units.at(i);
  check_order(u, i);
  const PassPlan& pp = plan_.passes[u.pass];
  Pass& p = *passes_[u.pass];
  begin_group(pp.group);
  gathered_[i] = 1;
  const pthreadpool_t pool = net_.pool();
  const size_t nf = net_.features(), cc = net_.cat_channels();
  const Strip s{u.crop.h, u.crop.w, u.tile.x - u.crop.x, u.tile.w, pp.bw, u.tile.x};
  if (u.crop.y != 0 || s.H != pp.bh || u.tile.y != 0 || u.tile.h != s.H)
    throw Error("a streamed block's strip is not whole");
  if (u.kind == UnitKind::kBlockWhole) keep_patches(i);
  std::vector<Patch> mine;
  if (!patches_.empty()) mine.swap(patches_[i]);
  auto read = [&](size_t y0, size_t y1, float* dst) {
    net_.timed("stream: read x", [&] { p.x.read(pp.bw, y0, u.crop.x, dst, s.W, 0, 0, y1 - y0, s.W, nf, pool); });
    for (const Patch& old : mine) {
      const size_t a = std::max(y0, old.r.y), b = std::min(y1, old.r.y + old.r.h);
      if (a < b)
        copy_rect(old.v.data(), old.r.w, a - old.r.y, 0, dst, s.W, a - y0, old.r.x - u.crop.x, b - a, old.r.w, nf,
                  pool);
    }
  };
  std::vector<double> sums(u.kind == UnitKind::kBlockSums ? cells(s.cw) * cc * 2 : 0, 0.0);
  size_t ticked = 0;
  auto emit = [&](size_t y0, size_t y1, float* cat, float* x) {
    if (u.kind == UnitKind::kBlockA) {
      net_.timed("stream: write cat",
                 [&] { p.cat.write(cat, s.W, 0, s.cx, pp.bw, y0, u.tile.x, y1 - y0, s.cw, cc, pool); });
    } else if (u.kind == UnitKind::kBlockSums) {
      net_.timed("stream: sums", [&] { add_band_sums(s, y0, y1, cat, cc, sums, p.cells.data(), pool); });
    } else {
      band_rest(net_, u.block, s, y0, y1, cat, x, p.x, p.acc, p.z);
    }
    const size_t k = y1 == s.H ? (s.H + kTickRows - 1) / kTickRows : y1 / kTickRows;
    if (tick && k > ticked) tick(ticked = k);
  };
  net_.stream_block(u.block, s.H, s.W, plan_.band(s.W), read, emit);
  if (--left_[u.phase] == 0) end_phase(u.phase);
}

}  // namespace imdn
