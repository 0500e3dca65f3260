// Rectangles of body pixels and how a plan cuts an image into them: tiles, crops with halos.
// Tiles and crops start on multiples of kAlign so that Winograd's 4x4 output tiles fall on one
// global grid (docs/plan.md), and the attention sums are taken per cell of kCell x kCell.
#pragma once

#include <cstddef>
#include <vector>

namespace imdn {

struct Rect {
  size_t y = 0, x = 0, h = 0, w = 0;
  bool empty() const { return h == 0 || w == 0; }
};

constexpr size_t kAlign = 4;  // tiles and crops start on multiples of this
constexpr size_t kCell = 32;  // body pixels a side of the attention sums' cells

// Cells of kCell over n pixels.
inline size_t cells(size_t n) { return (n + kCell - 1) / kCell; }

Rect intersect(const Rect& a, const Rect& b);

// Body pixels of halo that keep a tile exact through a chain of `convs` 3x3 convolutions: one each
// where an output depends only on its receptive field (direct, F(2x2)); with F(4x4) every output
// of a 4x4 tile depends in floating point on the tile's whole 6x6 input patch, up to 4 px beyond
// its own receptive field, so each convolution after the first costs 4.
size_t chain_halo(size_t convs, size_t winograd_tile);

// The crop around r with at least m pixels of halo inside an H x W body. Crops are (step + 2m) a
// side where the image allows: near a border the window slides inwards rather than shrinking,
// which keeps the tile exact and lets the operators keep their shape from tile to tile. Crops
// start on multiples of kAlign, which can add up to 3 px inside. slide = false: clipped at the
// border instead (recomputed blocks: a crop that slid inwards would read far into tiles written
// before it, whose old values would have to be kept for it).
Rect grow(const Rect& r, size_t m, size_t H, size_t W, size_t step_h, size_t step_w, bool slide = true);

// Tiles of at most `tile` a side over an h x w body, as equal as the grid allows; split further
// (down to 16) until there are at least min_tiles. Tiles start on multiples of `align`.
std::vector<Rect> plan_tiles(size_t h, size_t w, size_t tile, size_t min_tiles = 1, size_t align = kAlign);

}  // namespace imdn
