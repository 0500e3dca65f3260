// Exact tiled execution: the same output as a whole-image pass, in bounded memory, with far less
// recomputation than tiles that each run the whole network.
//
//   imdn::Network net(model, threads);
//   imdn::TiledNetwork tiled(net, /*tile=*/64);
//   tiled.run(rgb, h, w, out);          // equals net.run(rgb, h, w, out) up to float rounding
//
// Why not whole-network tiles: IMDN's contrast-aware attention scales each block's channels by
// their mean and standard deviation over the *whole image*, so a tile that runs the network alone
// sees other statistics and its pixels change (by up to 27 levels of 255 with 32 px tiles), and a
// tile needs a halo as wide as the receptive field (27 px) besides.
//
// Design: block at a time. The network is cut where it needs the whole image:
//   stem     per tile: input crop (tile + 1 body px, times the stem stride) -> fea, kept as x
//   block b  A, per tile: x crop (tile + one px per 3x3 step: 4, or 6 in IMDN_RTE) -> the block's
//              concatenation on the tile, kept in `cat`, and its per-channel sums on the tile
//            barrier: the sums of all tiles give the attention weights z_b (the only barrier)
//            B, pointwise in chunks: cat *= z_b; x += fuse(cat); acc += fusion_b(x)
//   tail     per tile: acc (or x) crop (tile + 2), and fea recomputed from the input (the stem is
//            0.3% of the MACs; keeping fea would cost a map) -> lr, + fea, up, pixel shuffle
// Each crop's values are exact on the tile because every 3x3 convolution only consumes one pixel
// of halo and the crop meets the image border exactly where the image does (zero padding); the
// sums are taken over the tiles' own pixels only, so they add up to the whole-image sums (in
// double precision, so the order of addition does not matter at float precision).
//
// Memory: whole-image maps of P = body pixels (input pixels / stem stride^2), float32:
//   P * (nf + cat_channels + (nf if IMDN's fusion))  -> IMDN: P * 192 floats = 768 bytes per pixel
// plus one crop's scratch, about (tile + 8)^2 * (5 * nf + 3 * upsample^2) floats, plus the output.
// Compute: the 3x3 convolutions of each block run on (tile + 8)^2 instead of tile^2 pixels;
// counted on a 512x512 x4 input (imdn-bench --tile): 1.12x the whole-image MACs with tiles of
// 128, 1.24x with 64, 1.50x with 32 (whole-network tiles: 1.73x, 3.02x, 6.67x).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "buffer.h"
#include "network.h"

namespace imdn {

class TiledNetwork {
 public:
  // tile: tile side in body pixels (input pixels / stem stride), at least 8.
  TiledNetwork(Network& net, size_t tile);

  // Receives output rows as the tail finishes them: n RGB pixels of row y from column x0. Called
  // from the pool's threads at once for different rows.
  using RowSink = std::function<void(size_t y, size_t x0, size_t n, const float* rgb)>;

  // As Network::run, for inputs whose sides are multiples of the model's size multiple.
  // progress(done, total) is called after each unit of work (tile of a stage) when set. With a
  // sink, output rows go to it instead of `output` (which may then be null).
  void run(const float* input, size_t h, size_t w, float* output,
           const std::function<void(size_t, size_t)>& progress = nullptr, const RowSink& sink = nullptr);

  // Bytes of maps and scratch a run over h x w allocates (output excluded).
  uint64_t memory_needed(size_t h, size_t w) const;
  size_t tile() const { return tile_; }
  // Multiply-accumulates of the last run's convolutions.
  uint64_t macs() const { return macs_; }

 private:
  Network& net_;
  size_t tile_;
  uint64_t macs_ = 0;
  // The whole-image maps and one crop's buffers, kept from run to run (first touches of fresh
  // memory are slow: page faults and zeroing cost more than the copies).
  Buffer x_, cat_, acc_, crop_, crop2_, out_;
};

}  // namespace imdn
