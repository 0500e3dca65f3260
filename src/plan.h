// The plan of a job: every pass, tile, unit and phase, and what they hold at once, decided from
// the image's shape and the options alone, before any pixel is read or anything image-sized is
// allocated. memoryNeeded(), refusals and every runner (Job::run in one instance, a pool's
// gathered units) read the same plan. docs/plan.md explains the design: why the network is cut
// into phases at the attention's barriers, why any tiling gives the same bytes, how maps are
// stored under a memory limit, recomputed and streamed blocks.
//
//   imdn::Plan plan = imdn::plan_job(net, imdn::assumed_shape(w, h, 3), options);
//   plan.memory.fits, plan.memory.bytes, plan.units.size(), ...
//
// Units by phase:
//   stem     per tile: input crop (tile + the stem's halo) -> features, kept as the map x
//   block b  A (kBlockA), per tile: crop of x -> the block's concatenation on the tile (map cat)
//            barrier: cat's per-channel sums (attention_sums.h) -> the attention weights z_b
//            B (kBlockB), per chunk of pixels: cat *= z_b; x += fuse(cat); acc += fusion_b(x)
//            recomputed: kBlockSums per tile (A's sums only), then kBlockWhole (A again, then B)
//            streamed: the same kinds, one unit per strip of the whole height (Network::stream_block)
//   tail     per tile: acc (or x) crop and the stem's features again -> output pixels
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "geometry.h"
#include "image.h"
#include "maps.h"
#include "network.h"
#include "unit.h"

namespace imdn {

// Who runs a job's units, which decides whether its blocks may be streamed (docs/plan.md).
enum class Executor {
  kUnits,     // anywhere: a pool gathers each unit and sends it (units stay tiles)
  kInstance,  // Job::run, all in this instance: blocks stream where that saves work or memory
};

struct JobOptions {
  size_t tile = 0;          // tile side, body pixels (input pixels / stem stride); 0 = kDefaultTile
  size_t min_tiles = 1;     // split tiles further, down to 16 px, until a pass has this many
  bool exact = true;        // false: whole-network tiles (a halo of the receptive field; no maps;
                            // approximate where the model has attention)
  bool raw = false;         // the network's RGB output as is: the colour plane (grey spread to
                            // RGB), no grey detection, no alpha; 3 float channels
  bool rgba8 = false;       // output RGBA bytes (else floats with the input's channels)
  size_t target_width = 0;  // IMDN_AS only: output size (bicubic resize to it first)
  size_t target_height = 0;
  uint64_t memory_limit = 0;             // bytes the job may hold at once (maps, planes, scratch, output);
                                         // 0, or above the network's limit (Network::memory_limit): that
  int map_bits = 0;                      // 32 or 16: the maps' storage; 0: float32 if the job fits the
                                         // limit so, else float16 (then tiles shrink, down to 64, if needed)
  int recompute = 0;                     // blocks recomputed instead of their concatenation stored: 1 always,
                                         // -1 never, 0 where nothing else fits the limit, and always for
                                         // networks without attention
  ExternalStore* external = nullptr;     // where float16 maps and RGBA output live, if not here
  Executor executor = Executor::kUnits;  // who runs the units (above)
  size_t strip = 0;                      // streamed blocks' strips, body pixels (tests); 0: as the
                                         // limit allows, the whole width first
};

// What a job would hold and how it would be stored.
struct JobMemory {
  uint64_t bytes = 0;          // the most held at once: maps, input planes, scratch, output
  uint64_t limit = 0;          // the limit it was planned under
  int map_bits = 32;           // 32 or 16
  bool recompute = false;      // blocks recomputed: no concatenation map
  bool streamed = false;       // blocks streamed down strips of the whole height
  size_t tile = 0;             // body pixels
  uint64_t float32_bytes = 0;  // the same job with float32 maps at the asked tile size
  bool fits = true;
  std::string why;  // !fits: what it would need, as the refusal says it
};

constexpr size_t kDefaultTile = 128;

// What planning needs to know of an image: its size and channels, and what its pixels say.
struct ImageShape {
  size_t width = 0, height = 0;  // the input's (before a target size)
  int channels = 3;
  bool grey = false;         // one plane makes the colour: R = G = B everywhere, or 1-2 channels
  bool translucent = false;  // an alpha channel not 1 everywhere: a pass of its own
  bool eight_colour = true;  // every colour value is k / 255: the planes kept as bytes
  bool eight_alpha = true;   // likewise alpha
};

// What an image's pixels say, for a job with these options (one scan, no copy).
ImageShape shape_of(const Image& image, const JobOptions& options);
// Without pixels: colour, a translucent alpha where there is one (the larger plan), 8-bit.
ImageShape assumed_shape(size_t width, size_t height, int channels);

// One pass of an RGB plane through the network: colour (or grey), then alpha as a grey image of
// its own; IMDN_AS's corner crops; with exact = false, whole-network tiles. Passes of one group
// run in lockstep (their units share phases); groups run one after another.
struct PassPlan {
  enum Role { kColour, kGrey, kAlpha } role = kColour;
  size_t h = 0, w = 0;       // the plane, input pixels...
  size_t sy = 0, sx = 0;     // ...from (sy, sx) of the (resized) image, its edges replicated beyond it
  size_t bh = 0, bw = 0;     // body pixels
  bool eight = true;         // the plane kept as bytes
  std::vector<Rect> tiles;   // body pixels
  std::vector<Rect> strips;  // blocks streamed: their units' cores, columns of the whole height
  size_t step_h = 0, step_w = 0;
  Rect keep;              // of this pass's output, the part that goes into the result...
  size_t oy = 0, ox = 0;  // ...at (oy, ox)
  size_t group = 0;
  size_t values() const { return h * w * 3; }
};

struct Plan {
  struct Phase {
    size_t begin = 0, count = 0;  // units [begin, begin + count)
    bool pointwise = false;       // a block's pointwise part: cheaper in place than moved
  };
  struct Unit {
    UnitKind kind;
    size_t pass, block, phase;
    Rect tile, crop, wide;  // body pixels; wide: the tail's stem crop
    size_t p0 = 0, p1 = 0;  // kBlockB: pixels of the maps
  };

  JobOptions options;  // as planned (tile: the one chosen)
  std::vector<PassPlan> passes;
  std::vector<Phase> phases;
  std::vector<Unit> units;
  size_t groups = 0;
  size_t tiles = 0;  // tail units: output tiles, over all passes
  size_t out_w = 0, out_h = 0;
  int out_c = 0;
  bool fill_alpha = false;  // the output has an alpha channel, opaque unless a pass writes it
  bool half = false;        // maps stored as float16
  bool recompute = false;   // blocks recomputed (no cat map)
  size_t strip = 0;         // blocks streamed in strips of at most this many body pixels, or 0
  size_t threads = 1;       // the network's
  JobMemory memory;
  uint64_t macs = 0;  // multiply-accumulates of the convolutions of all units

  bool streamed(const Unit& u) const;
  size_t weight(size_t i) const;  // unit i's steps of progress
  // Blocks streamed: the rows of a band for strips w wide.
  size_t band(size_t w) const;
};

// The plan of a job: validates the options and sizes (throws imdn::Error for what cannot be made
// at all), then plans under the memory limit; memory.fits = false where the job must be refused.
Plan plan_job(Network& net, const ImageShape& shape, const JobOptions& options);

// Throws imdn::Error for options or sizes no plan can have.
void check_job(Network& net, size_t width, size_t height, const JobOptions& options);

// Output width and height of a w x h input (a target size: IMDN_AS only); throws imdn::Error for
// sizes that cannot be made.
std::pair<size_t, size_t> output_size(const ModelInfo& info, size_t w, size_t h, size_t target_w = 0,
                                      size_t target_h = 0);

// The units and phases of a plan whose passes are tiled, then what they hold at once and compute
// (plan_units.cpp): the steps of plan_job's search under the memory limit.
void build_units(Network& net, Plan& plan);
void account_memory(Network& net, Plan& plan);

}  // namespace imdn
