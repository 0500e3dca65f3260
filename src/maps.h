// Where a job's values live and how they move: float storage for units (Floats), memory outside
// the engine (ExternalStore: ArrayBuffers under WebAssembly), whole-image feature maps (Map:
// float32, or float16 here or outside), and the one copy routine every gather, scatter and crop
// goes through (copy_rect: rows split across the pool, converting between storage types).
#pragma once

#include <pthreadpool.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <utility>
#include <vector>

#include "buffer.h"
#include "geometry.h"
#include "half.h"
#include "ops.h"

namespace imdn {

// Float storage for units: 64-byte aligned like Buffer (SIMD loads that straddle cache lines cost
// most where two threads stream through memory), with XNNPACK's read-past-the-end slack, and not
// zeroed when sized (every value is written before it is read; zeroing a 17 MB crop cost more than
// copying it).
template <class T>
struct UnitAllocator {
  using value_type = T;
  UnitAllocator() = default;
  template <class U>
  UnitAllocator(const UnitAllocator<U>&) noexcept {}
  T* allocate(size_t n) {
    const size_t bytes = ((n * sizeof(T) + XNN_EXTRA_BYTES + 63) / 64) * 64;
    void* p = std::aligned_alloc(64, bytes);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) noexcept { std::free(p); }
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;  // default-initialized: not zeroed
  }
  template <class U, class... A>
  void construct(U* p, A&&... a) {
    ::new (static_cast<void*>(p)) U(std::forward<A>(a)...);
  }
  template <class U>
  bool operator==(const UnitAllocator<U>&) const noexcept {
    return true;
  }
  template <class U>
  bool operator!=(const UnitAllocator<U>&) const noexcept {
    return false;
  }
};
using Floats = std::vector<float, UnitAllocator<float>>;

// Memory outside the engine's own for a job's largest buffers: its float16 maps and its RGBA
// output. Under WebAssembly these are JavaScript ArrayBuffers (wasm/bindings.cpp): a WebAssembly
// memory only grows, but such a buffer goes back the moment the job releases it, and the output
// is the caller's without a copy. Natively none: the job's own vectors.
class ExternalStore {
 public:
  virtual ~ExternalStore() = default;
  // A zeroed buffer of `bytes`, each 4 bytes `fill` (little-endian) if nonzero; its id, or -1
  // when there is no such memory. result: the job's output, handed to the caller as it is (never
  // shrunk by release); else a map, whose memory release() gives back at once.
  virtual int allocate(uint64_t bytes, uint32_t fill, bool result) = 0;
  virtual void release(int id) = 0;
  // `rows` rows of `row` bytes, `stride` bytes apart from byte `offset` of buffer id <-> packed at p.
  virtual void read(int id, uint64_t offset, size_t row, uint64_t stride, size_t rows, void* p) const = 0;
  virtual void write(int id, uint64_t offset, size_t row, uint64_t stride, size_t rows, const void* p) = 0;
  // The same, as one copy where the rows lie end to end.
  void read_rows(int id, uint64_t offset, size_t row, uint64_t stride, size_t rows, void* p) const {
    if (stride == row || rows == 1)
      read(id, offset, row * rows, row * rows, 1, p);
    else
      read(id, offset, row, stride, rows, p);
  }
  void write_rows(int id, uint64_t offset, size_t row, uint64_t stride, size_t rows, const void* p) {
    if (stride == row || rows == 1)
      write(id, offset, row * rows, row * rows, 1, p);
    else
      write(id, offset, row, stride, rows, p);
  }
};

// Rows per task of the copies below (split across the network's threads).
inline size_t copy_grain(size_t row_floats) {
  return std::max<size_t>(1, (size_t(1) << 14) / std::max<size_t>(1, row_floats));
}

// n values between float32 and float16 storage (half.h), or copied; 8-bit input planes give the
// values they were made from, exactly.
inline void convert(const float* s, float* d, size_t n) { std::copy_n(s, n, d); }
inline void convert(const uint16_t* s, float* d, size_t n) { from_half(s, d, n); }
inline void convert(const float* s, uint16_t* d, size_t n) { to_half(s, d, n); }
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

// A whole-image map: float32, or float16 where the job's memory limit asks (docs/plan.md); float16
// in the job's external memory when it has some (its reads and writes then go through the
// workspace's staging buffer, converted on the pool's threads as ever).
class Map {
 public:
  Map() = default;
  Map(const Map&) = delete;
  Map& operator=(const Map&) = delete;
  ~Map() { release(); }

  void allocate(size_t n, bool as_half, ExternalStore* store, Workspace* workspace);
  void zero(size_t n);  // (external buffers start zeroed)
  void release();
  bool half() const { return half_; }
  // The values where they live here (null for the other precision, or outside).
  float* f32() { return f_.data(); }
  const uint16_t* f16() const { return h_.data(); }

  // h x w pixels of C channels at (y, x) of the map (map_w pixels a row) <-> dst at (dy, dx), rows
  // dst_w apart.
  void read(size_t map_w, size_t y, size_t x, float* dst, size_t dst_w, size_t dy, size_t dx, size_t rows, size_t w,
            size_t C, pthreadpool_t pool) const;
  void write(const float* src, size_t src_w, size_t sy, size_t sx, size_t map_w, size_t y, size_t x, size_t rows,
             size_t w, size_t C, pthreadpool_t pool);
  // Values of pixels [p0, p1) of C channels <-> contiguous floats.
  void read_pixels(size_t p0, size_t p1, size_t C, float* dst, pthreadpool_t pool) const {
    read(1, p0, 0, dst, 1, 0, 0, p1 - p0, 1, C, pool);
  }
  void write_pixels(const float* src, size_t p0, size_t p1, size_t C, pthreadpool_t pool) {
    write(src, 1, 0, 0, 1, p0, 0, p1 - p0, 1, C, pool);
  }
  // Rect r (C channels) -> contiguous floats; contiguous floats of rect r -> the map.
  void take(size_t map_w, const Rect& r, size_t C, Floats* dst, pthreadpool_t pool) const {
    dst->resize(r.h * r.w * C);  // (not zeroed: UnitAllocator)
    read(map_w, r.y, r.x, dst->data(), r.w, 0, 0, r.h, r.w, C, pool);
  }
  void put(const float* src, const Rect& r, size_t C, size_t map_w, pthreadpool_t pool) {
    write(src, r.w, 0, 0, map_w, r.y, r.x, r.h, r.w, C, pool);
  }

 private:
  // The packed rect <-> the external buffer.
  void external(size_t map_w, size_t y, size_t x, size_t rows, size_t w, size_t C, uint16_t* to,
                const uint16_t* from) const;

  Buffer f_;
  std::vector<uint16_t, UnitAllocator<uint16_t>> h_;
  bool half_ = false;
  ExternalStore* ext_ = nullptr;
  Workspace* workspace_ = nullptr;
  int id_ = -1;
};

// Rect r of an array of C channels (src_w pixels a row) -> contiguous floats.
template <class T>
void take(const T* src, size_t src_w, const Rect& r, size_t C, Floats* dst, pthreadpool_t pool) {
  dst->resize(r.h * r.w * C);
  copy_rect(src, src_w, r.y, r.x, dst->data(), r.w, 0, 0, r.h, r.w, C, pool);
}

}  // namespace imdn
