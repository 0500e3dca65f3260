// Units: the pieces of work a plan is made of (plan.h), each a pure function of the network's
// weights and its inputs, so that any instance holding the model gives the same bytes. Their
// kinds, their data as one message between instances (wire format), and run_unit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "maps.h"
#include "network.h"

namespace imdn {

enum class UnitKind : uint32_t { kStem = 1, kBlockA = 2, kBlockB = 3, kTail = 4, kBlockSums = 5, kBlockWhole = 6 };

// What each kind is, in one place: the planner and the runner ask these, never a list of kinds
// (what a kind's data are is its case in gather, scatter and run_unit).
struct KindTraits {
  bool block_crop;    // a block's crop of x: may be streamed down a strip instead (A, Sums, Whole)
  bool before_sums;   // its phase ends at the attention's barrier (A, Sums)
  bool block_end;     // its phase ends a block (B, Whole)
  bool pointwise;     // a run of pixels, not a crop (B)
  bool through_data;  // run here through its unit data, not on the maps in place: its crop is
                      // changed (Tail) or carries kept old values (Sums, Whole)
};
constexpr KindTraits traits(UnitKind kind) {
  switch (kind) {
    case UnitKind::kStem: return {false, false, false, false, false};
    case UnitKind::kBlockA: return {true, true, false, false, false};
    case UnitKind::kBlockB: return {false, false, true, true, false};
    case UnitKind::kTail: return {false, false, false, false, true};
    case UnitKind::kBlockSums: return {true, true, false, false, true};
    case UnitKind::kBlockWhole: return {true, false, true, false, true};
  }
  return {false, false, false, false, false};
}

// What a unit needs or made, as flat float arrays and a header that says what they are; encode()
// and decode() make it one byte buffer for a message between instances.
//   kStem    in: a[0] RGB input crop (ih x iw x 3)            out: a[0] features on the core
//   kBlockA  in: a[0] x crop (h x w x nf)                    out: a[0] concatenation on the core
//   kBlockB  in: a[0] z (cat channels, or none), a[1] cat, a[2] x, a[3] acc (or none), `pixels` long
//            out: a[0] x, a[1] acc (or none)
//   Blocks recomputed (no cat map, plan.h):
//   kBlockSums   in: a[0] x crop (h x w x nf)     out: a[0] the core's cell sums (plan.h), 4 * cat
//                channels a cell, cells of the core row by row
//   kBlockWhole  in: a[0] z (or none), a[1] x crop (h x w x nf), a[2] acc on the core (or none)
//                out: a[0] x on the core, a[1] acc on the core (or none)
//   kTail    in: a[0] acc or x crop (h x w x nf), a[1] RGB input under the stem's wider crop
//            (ih x iw x 3; the crop sits at (ay, ax) of its body grid)
//            out: a[0] RGB output of the core (oh x ow x 3)
struct UnitData {
  struct Header {
    uint32_t kind = 0, block = 0;
    uint32_t h = 0, w = 0;                    // the crop, body pixels
    uint32_t cy = 0, cx = 0, ch = 0, cw = 0;  // the core inside the crop
    uint32_t ih = 0, iw = 0;                  // kStem, kTail: input pixels sent
    uint32_t ay = 0, ax = 0;                  // kTail: the crop in the input's body grid
    uint32_t oh = 0, ow = 0;                  // kTail: output pixels returned
    uint32_t pixels = 0;                      // kBlockB
  } head;
  Floats a[4];

  std::vector<uint8_t> encode() const;
  static UnitData decode(const uint8_t* bytes, size_t size);  // throws imdn::Error if malformed

  // The encoding is a prefix (magic, header, the four arrays' lengths) and the arrays' floats one
  // after another: callers that copy the arrays themselves (straight between JavaScript and the
  // vectors, wasm/bindings.cpp) use these. read_prefix checks the lengths against `size` and sizes
  // the arrays.
  static constexpr size_t kPrefix = 4 + sizeof(Header) + 4 * sizeof(uint32_t);
  void write_prefix(uint8_t* out) const;
  size_t encoded_size() const;
  static UnitData read_prefix(const uint8_t* bytes, size_t size);
};

// Runs one unit: a pure function of the network's weights and the unit's inputs, so any instance
// holding the model gives the same bytes. Its scratch: the network's workspace.
UnitData run_unit(Network& net, UnitData in);

}  // namespace imdn
