#include "geometry.h"

#include <algorithm>

namespace imdn {

Rect intersect(const Rect& a, const Rect& b) {
  const size_t y0 = std::max(a.y, b.y), x0 = std::max(a.x, b.x);
  const size_t y1 = std::min(a.y + a.h, b.y + b.h), x1 = std::min(a.x + a.w, b.x + b.w);
  if (y1 <= y0 || x1 <= x0) return {};
  return {y0, x0, y1 - y0, x1 - x0};
}

size_t chain_halo(size_t convs, size_t winograd_tile) {
  if (convs == 0) return 0;
  return winograd_tile == 4 ? 4 * (convs - 1) + 1 : convs;
}

Rect grow(const Rect& r, size_t m, size_t H, size_t W, size_t step_h, size_t step_w, bool slide) {
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

}  // namespace imdn
