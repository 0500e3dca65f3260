// The attention's whole-image statistics, summed the one way every path sums them: per cell of
// kCell x kCell body pixels on one global grid, each cell's sums and sums of squares in double,
// pixel by pixel in raster order, kept as a pair of floats (hi, and the rest lo); then the cells
// added in raster order. So the sums, and the bytes, do not depend on the tiling, the thread
// count or which instance summed a cell (docs/plan.md).
#pragma once

#include <pthreadpool.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "geometry.h"
#include "ops.h"

namespace imdn {

// One row of n pixels of C channels into a cell's running sums and sums of squares.
inline void add_row(const float* px, size_t n, size_t C, double* s, double* q) {
  for (size_t x = 0; x < n; ++x, px += C) {
    for (size_t c = 0; c < C; ++c) {
      const double v = px[c];
      s[c] += v;
      q[c] += v * v;
    }
  }
}

// A cell's sums and sums of squares (double) as kept: 4 * C floats, [sum hi, sum lo, square hi,
// square lo], C each.
void finish_cell(const double* s, const double* q, size_t C, float* out);

// The cells of an h x w rect of C channels at src (rows src_w pixels apart) whose top-left is a
// cell corner (clipped at the rect's right and bottom edges), cell by cell in raster order into
// out (4 * C floats a cell). T: float, or uint16_t (float16 maps). The cells are independent, so
// the thread count changes nothing.
template <class T>
void cell_sums(const T* src, size_t src_w, size_t h, size_t w, size_t C, float* out, pthreadpool_t pool);

// The sums over n cells (cell_sums' layout), added in cell order; `pixels` counted.
ops::ChannelSums add_cells(const float* cells, size_t n, size_t C, size_t pixels);

// Mean and population standard deviation per channel of `pixels` pixels (a row of cells).
void channel_stats(const float* x, size_t pixels, size_t C, pthreadpool_t pool, std::vector<double>* mean,
                   std::vector<double>* stdev);

}  // namespace imdn
