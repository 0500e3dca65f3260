#include "maps.h"

namespace imdn {

void Map::allocate(size_t n, bool as_half, ExternalStore* store, Workspace* workspace) {
  half_ = as_half;
  workspace_ = workspace;
  if (half_ && store) {
    id_ = store->allocate(uint64_t(n) * sizeof(uint16_t), 0, false);
    if (id_ < 0) throw std::bad_alloc();
    ext_ = store;
  } else if (half_) {
    h_.resize(n);
  } else {
    f_.resize(n);
  }
}

void Map::zero(size_t n) {
  if (id_ >= 0)
    return;
  else if (half_)
    std::fill_n(h_.data(), n, uint16_t(0));
  else
    std::fill_n(f_.data(), n, 0.f);
}

void Map::release() {
  f_.release();
  decltype(h_)().swap(h_);
  if (id_ >= 0) ext_->release(id_);
  id_ = -1;
}

void Map::read(size_t map_w, size_t y, size_t x, float* dst, size_t dst_w, size_t dy, size_t dx, size_t rows, size_t w,
               size_t C, pthreadpool_t pool) const {
  if (id_ >= 0) {
    uint16_t* s = workspace_->staging(rows * w * C);
    external(map_w, y, x, rows, w, C, s, nullptr);
    copy_rect(s, w, 0, 0, dst, dst_w, dy, dx, rows, w, C, pool);
  } else if (half_) {
    copy_rect(h_.data(), map_w, y, x, dst, dst_w, dy, dx, rows, w, C, pool);
  } else {
    copy_rect(f_.data(), map_w, y, x, dst, dst_w, dy, dx, rows, w, C, pool);
  }
}

void Map::write(const float* src, size_t src_w, size_t sy, size_t sx, size_t map_w, size_t y, size_t x, size_t rows,
                size_t w, size_t C, pthreadpool_t pool) {
  if (id_ >= 0) {
    uint16_t* s = workspace_->staging(rows * w * C);
    copy_rect(src, src_w, sy, sx, s, w, 0, 0, rows, w, C, pool);
    external(map_w, y, x, rows, w, C, nullptr, s);
  } else if (half_) {
    copy_rect(src, src_w, sy, sx, h_.data(), map_w, y, x, rows, w, C, pool);
  } else {
    copy_rect(src, src_w, sy, sx, f_.data(), map_w, y, x, rows, w, C, pool);
  }
}

void Map::external(size_t map_w, size_t y, size_t x, size_t rows, size_t w, size_t C, uint16_t* to,
                   const uint16_t* from) const {
  const size_t row = w * C * sizeof(uint16_t);
  const uint64_t stride = uint64_t(map_w) * C * sizeof(uint16_t),
                 offset = (uint64_t(y) * map_w + x) * C * sizeof(uint16_t);
  if (to)
    ext_->read_rows(id_, offset, row, stride, rows, to);
  else
    ext_->write_rows(id_, offset, row, stride, rows, from);
}

}  // namespace imdn
