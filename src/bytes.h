// Bytes as files store them: little- and big-endian integers and the zip/PNG CRC-32. One
// implementation each for every reader (model files, checkpoints, image headers); float16 is half.h.
// A leaf: nothing of the engine below it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace imdn {

// The k-byte (k <= 8) little-endian unsigned integer at p.
inline uint64_t read_le(const uint8_t* p, int k) {
  uint64_t v = 0;
  for (int j = k - 1; j >= 0; --j) v = v << 8 | p[j];
  return v;
}

// The k-byte (k <= 8) big-endian unsigned integer at p.
inline uint64_t read_be(const uint8_t* p, int k) {
  uint64_t v = 0;
  for (int j = 0; j < k; ++j) v = v << 8 | p[j];
  return v;
}

// CRC-32 (IEEE 802.3, reflected, as zip and PNG use it).
uint32_t crc32(const uint8_t* data, size_t size);

}  // namespace imdn
