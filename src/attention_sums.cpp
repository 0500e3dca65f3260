#include "attention_sums.h"

#include <algorithm>
#include <type_traits>

#include "maps.h"

namespace imdn {

void finish_cell(const double* s, const double* q, size_t C, float* o) {
  for (size_t c = 0; c < C; ++c) {
    o[c] = float(s[c]);
    o[C + c] = float(s[c] - double(o[c]));
    o[2 * C + c] = float(q[c]);
    o[3 * C + c] = float(q[c] - double(o[2 * C + c]));
  }
}

template <class T>
void cell_sums(const T* src, size_t src_w, size_t h, size_t w, size_t C, float* out, pthreadpool_t pool) {
  const size_t rows = cells(h), cols = cells(w);
  ops::parallel_rows(pool, rows * cols, 1, [&](size_t k0, size_t k1) {
    // (Per task: a cell's running sums, and a row of it widened from float16.)
    std::vector<double> s(C), q(C);
    std::vector<float> wide(std::is_same_v<T, float> ? 0 : kCell * C);
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

template void cell_sums<float>(const float*, size_t, size_t, size_t, size_t, float*, pthreadpool_t);
template void cell_sums<uint16_t>(const uint16_t*, size_t, size_t, size_t, size_t, float*, pthreadpool_t);

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

void channel_stats(const float* x, size_t pixels, size_t C, pthreadpool_t pool, std::vector<double>* mean,
                   std::vector<double>* stdev) {
  std::vector<float> sums(cells(pixels) * 4 * C);
  cell_sums(x, pixels, 1, pixels, C, sums.data(), pool);
  ops::stats_from_sums(add_cells(sums.data(), cells(pixels), C, pixels), mean, stdev);
}

}  // namespace imdn
