// IEEE binary16 storage for feature maps and model files (docs/plan.md: maps too large for the memory budget in float32
// are kept as float16 and widened to float32 for every unit's arithmetic).
//
// WebAssembly SIMD has no conversion instruction, so these are integer bit manipulations written
// without branches (selects), which compilers turn into 4-wide SIMD loops. Both directions are
// exact IEEE conversions: float -> half rounds to nearest, ties to even (overflow gives infinity,
// NaN stays NaN, subnormals are kept); half -> float is exact. So every build and every platform
// stores the same bits (F. Giesen's "float_to_half_fast3_rtne" and "half_to_float", public domain).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace imdn {

inline uint16_t to_half(float value) {
  uint32_t f;
  std::memcpy(&f, &value, 4);
  const uint32_t sign = f & 0x80000000u;
  f ^= sign;
  // Normal range: rebias the exponent and round the mantissa to 10 bits, ties to even.
  const uint32_t normal = (f + (uint32_t(15 - 127) << 23) + 0xfffu + ((f >> 13) & 1u)) >> 13;
  // Subnormal halves (|value| < 2^-14): adding 0.5 makes the FPU round the mantissa for us.
  float magic;
  const uint32_t magic_bits = uint32_t((127 - 15) + (23 - 10) + 1) << 23;
  std::memcpy(&magic, &magic_bits, 4);
  float fv;
  std::memcpy(&fv, &f, 4);
  const float sum = fv + magic;
  uint32_t sub;
  std::memcpy(&sub, &sum, 4);
  sub -= magic_bits;
  const uint32_t big = f > (255u << 23) ? 0x7e00u : 0x7c00u;  // NaN : infinity
  uint32_t o = f >= (uint32_t(127 + 16) << 23) ? big : f < (113u << 23) ? sub : normal;
  return uint16_t(o | (sign >> 16));
}

inline float from_half(uint16_t h) {
  const uint32_t shifted_exp = 0x7c00u << 13;
  uint32_t o = uint32_t(h & 0x7fffu) << 13;
  const uint32_t exp = shifted_exp & o;
  o += uint32_t(127 - 15) << 23;
  const uint32_t inf_nan = o + (uint32_t(128 - 16) << 23);
  // Subnormal: renormalise by letting the FPU subtract the implicit bit.
  const uint32_t denorm_bits = o + (1u << 23);
  float dn, magic;
  std::memcpy(&dn, &denorm_bits, 4);
  const uint32_t magic_bits = 113u << 23;
  std::memcpy(&magic, &magic_bits, 4);
  dn -= magic;
  uint32_t dn_bits;
  std::memcpy(&dn_bits, &dn, 4);
  o = exp == shifted_exp ? inf_nan : exp == 0 ? dn_bits : o;
  o |= uint32_t(h & 0x8000u) << 16;
  float out;
  std::memcpy(&out, &o, 4);
  return out;
}

inline void to_half(const float* __restrict src, uint16_t* __restrict dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = to_half(src[i]);
}

inline void from_half(const uint16_t* __restrict src, float* __restrict dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = from_half(src[i]);
}

}  // namespace imdn
