// The one tiling plan: every way of running the network (one whole image, exact tiles inside one
// instance, a pool of workers each holding the model) is a loop over the units of a Job.
//
//   imdn::Job job(net, image, options);           // plans the passes, tiles and phases
//   job.run(progress);                             // all units here, in this instance; or:
//   for each phase p:                              // the pool (wasm/core.js): units anywhere
//     for i in job.phase(p):  out = net_elsewhere.run_unit(job.gather(i)); job.scatter(i, out);
//   job.take_image();
//
// Why a plan: IMDN's contrast-aware attention scales each block's channels by their mean and
// standard deviation over the *whole image*, so tiles that each ran the whole network would see
// other statistics (their pixels change by up to 27 levels with 32 px tiles) and need a halo as wide
// as the receptive field (27 px). Instead the network is cut where it needs the whole image, and
// each cut is a barrier between two phases of independent units:
//   stem     per tile: input crop (tile + the stem's halo, times the stem stride) -> features,
//            kept as the map x (the first block's input)
//   block b  A, per tile: crop of x (tile + a halo for its 3x3 steps, below) -> the block's
//              concatenation on the tile, kept in the map cat
//            barrier: cat's per-channel sums over the whole image -> the attention weights z_b
//            B, per chunk of kChunk pixels: cat *= z_b; x += fuse(cat); acc += fusion_b(x)
//   tail     per tile: acc (or x) crop (tile + the tail's halo) and the stem's features recomputed
//            from the input (0.3% of the MACs; keeping them would cost a map) -> output pixels
// A crop's values are exact on its tile because each 3x3 convolution consumes its halo (one pixel
// for direct convolutions; with Winograd F(4x4) four, the first one: winograd.h) and a crop meets
// the image border exactly where the image does (zero padding). IMDN's blocks: 4 px of halo direct,
// 13 with F(4x4).
//
// The same bytes for any tiling: tiles and crops start on multiples of 4 body pixels, so Winograd's
// 4x4 output tiles (winograd.h) fall on one global grid and every output value is computed by the
// same arithmetic from the same inputs whatever crop holds it; the attention sums are taken per
// cell of 32 x 32 body pixels on one global grid and added in a fixed order (below: Blocks
// recomputed), not per tile. So the output does not depend on the tile size, the number of
// workers or threads, or which instance ran a unit.
//
// Passes: an image is one or more passes of an RGB plane through the network: colour (or grey),
// then alpha as a grey image of its own when it is not opaque; IMDN_AS's four corner crops for
// sides that are not multiples of 4; with exact = false, whole-network tiles. Passes of one group
// run in lockstep (their units share phases); groups run one after another, each with its own maps.
//
// Memory: maps of P body pixels per pass: P * (nf + cat_channels + (nf with IMDN's fusion)) values
// -> IMDN: P * 192, 768 bytes per input pixel as float32, 384 as float16; plus the input planes,
// one unit's scratch, and the output, which is allocated when the tail begins, after x and cat
// are given back (the tail reads acc alone). A job is planned under a memory limit
// (JobOptions::memory_limit): float32 maps where the whole job fits, else float16 ones (every unit
// still computes in float32: maps are widened as units read them and rounded to nearest as they
// are written, so the bytes still do not depend on the tiling; against float32 maps about 1% of
// 8-bit output values move by one level), with tiles down to 64 if still needed; else the job is
// refused before anything image-sized is allocated, saying what it would need. The input planes
// are bytes where the image is 8-bit (every value k / 255), else floats. With external memory
// (JobOptions::external: ArrayBuffers under WebAssembly), float16 x and acc and the RGBA output
// live there: given back the moment the job releases them (a WebAssembly memory never shrinks),
// and the output is the caller's as it is. The limit counts them all the same.
//
// Blocks recomputed (the last resort under a limit, or JobOptions::recompute): the concatenation is
// the one map that lives only from a block's part A to its part B, so it need not be kept: part A
// keeps only its attention sums (kBlockSums), and part B runs the block's steps again on the same
// crops before its pointwise rest (kBlockWhole), writing x in place. Maps: P * (nf + nf), 512 bytes
// per input pixel as float32, 256 as float16; IMDN's blocks cost about twice. RTC and RTE have no
// attention, so no part A: their steps run once, and they always plan so. The same bytes as stored
// maps of the same precision, for any tiling, because
//  - the attention sums are taken per cell of 32 x 32 body pixels on one global grid (a cell's
//    sum in double in raster order, kept as a float pair), added cell by cell in raster order, by
//    every plan alike (stored maps: from the map at the barrier); recomputed tiles are cut on
//    that grid, so a tile's core holds whole cells;
//  - x is written in place: a kBlockWhole tile overwrites its core, which the crops of its
//    neighbours still read, so before it writes, the old values under every crop of that phase
//    not yet gathered are kept for that unit (its patches), whatever order units are gathered and
//    scattered in (a pool scatters out of order).
//
// Blocks streamed (a job that runs in one instance, JobOptions::stream: recomputed blocks always,
// kept ones where tiles would cut the image): a tile's halo costs its steps (13 px a side: 1.45x
// the work on tiles of 128, paid twice where blocks are recomputed), so instead each block phase
// is one unit per strip of the whole height (the whole width where memory allows, else strips with
// a halo at their sides only), run down the strip a band of rows (8 or more) at a time by
// Network::stream_block: each step holds a ring of the rows the next one still reads, one tile row
// behind the step before it, so no row is computed twice and no crop is held. Every value is the
// one a crop would give (the Winograd tiles fall on the same global grid, and a ring holds every
// row a tile reads), the sums are added cell by cell in the same order, and x is written in place
// a band behind the rows the steps read; so the same bytes as tiles. A pool's units are gathered
// and sent, which a strip would make image-sized: it keeps tiles.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "buffer.h"
#include "image.h"
#include "network.h"

namespace imdn {

struct Rect {
  size_t y = 0, x = 0, h = 0, w = 0;
  bool empty() const { return h == 0 || w == 0; }
};

enum class UnitKind : uint32_t { kStem = 1, kBlockA = 2, kBlockB = 3, kTail = 4, kBlockSums = 5, kBlockWhole = 6 };

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
// holding the model gives the same bytes.
UnitData run_unit(Network& net, UnitData in);

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
  uint64_t memory_limit = 0;          // bytes the job may hold at once (maps, planes, scratch, output);
                                      // 0, or above the network's limit (Network::memory_limit): that
  int map_bits = 0;                   // 32 or 16: the maps' storage; 0: float32 if the job fits the
                                      // limit so, else float16 (then tiles shrink, down to 64, if needed)
  int recompute = 0;                  // blocks recomputed instead of their concatenation stored: 1 always,
                                      // -1 never, 0 where nothing else fits the limit, and always for
                                      // networks without attention (plan.h)
  ExternalStore* external = nullptr;  // where float16 maps and RGBA output live, if not here
  bool stream = false;                // the job runs in this instance (Job::run, not a pool's
                                      // gathered units): its blocks may be streamed (above)
  size_t strip = 0;                   // streamed blocks' strips, body pixels (tests); 0: as the
                                      // limit allows, the whole width first
};

// What a job would hold and how it would be stored (Job::estimate, Job::plan_used).
struct JobMemory {
  uint64_t bytes = 0;          // the most held at once: maps, input planes, scratch, output
  uint64_t limit = 0;          // the limit it was planned under
  int map_bits = 32;           // 32 or 16
  bool recompute = false;      // blocks recomputed: no concatenation map
  bool streamed = false;       // blocks streamed down strips of the whole height (plan.h)
  size_t tile = 0;             // body pixels
  uint64_t float32_bytes = 0;  // the same job with float32 maps at the asked tile size
  bool fits = true;
  std::string why;  // !fits: what it would need, as the refusal says it
};

constexpr size_t kDefaultTile = 128;

class Job {
 public:
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

  // Plans the work; throws imdn::Error for images it cannot make (sizes, memory limit: before
  // anything image-sized but the input planes is allocated).
  Job(Network& net, const Image& input, const JobOptions& options);
  // The plan a width x height image of `channels` channels would get (with alpha: a translucent
  // one, the larger plan), without pixels and without allocating it; fits = false where the Job
  // would refuse it. Throws imdn::Error for sizes that cannot be made at all.
  static JobMemory estimate(Network& net, size_t width, size_t height, int channels, const JobOptions& options);
  ~Job();

  size_t units() const { return units_.size(); }
  size_t tiles() const { return tiles_; }  // tail units: output tiles, over all passes
  const std::vector<Phase>& phases() const { return phases_; }
  const Unit& unit(size_t i) const { return units_.at(i); }

  // Unit i's inputs. Every unit of the phases before its own must have been scattered.
  UnitData gather(size_t i);
  // Unit i's results into the maps or the output; returns the output rectangle it completed
  // (empty for units inside the network). The last unit of a phase runs its barrier.
  Rect scatter(size_t i, const UnitData& out);
  // Unit i in this instance: gathered, run and scattered, or for a pointwise unit run in place on
  // the maps (no copies; the same arithmetic). Returns what scatter() does.
  Rect run_here(size_t i);
  // Every unit, in this instance. progress(done, total, rect) after each; it may throw to stop.
  void run(const std::function<void(size_t, size_t, const Rect&)>& progress = nullptr);

  size_t width() const { return out_w_; }
  size_t height() const { return out_h_; }
  int channels() const { return out_c_; }
  const std::vector<uint8_t>& rgba8() const { return out8_; }  // options.rgba8, unless external
  const std::vector<float>& floats() const { return outf_; }   // otherwise
  // options.rgba8 with options.external: the output's buffer there (-1 before the tail, and
  // without external memory), and rectangle r of it, wherever it lives, into dst (r.h*r.w*4).
  int output_buffer() const { return out_id_; }
  void read_rgba8(const Rect& r, uint8_t* dst) const;
  Image take_image();

  // What the job holds at most at once, and how it stores its maps.
  uint64_t memory_needed() const { return memory_; }
  const JobMemory& memory() const { return plan_; }
  // Multiply-accumulates of the convolutions of all units (tools/bench: the cost of halos).
  uint64_t macs() const { return macs_; }

 private:
  struct Pass;
  Job(Network& net, const Image* input, size_t width, size_t height, int channels, const JobOptions& options);
  void plan_pass(std::unique_ptr<Pass> pass, size_t group);
  void tile_pass(Pass& pass);
  void build_phases();
  void fit_memory(const Image* input);
  void begin_group(size_t group);
  void end_phase(size_t phase);
  void keep_patches(size_t i);
  void begin_output();
  bool streamed(const Unit& u) const;
  size_t weight(size_t i) const;  // unit i's steps of progress
  size_t band(size_t w) const;
  void stream_unit(size_t i, const std::function<void(size_t)>& tick);

  Network& net_;
  JobOptions options_;
  std::vector<std::unique_ptr<Pass>> passes_;
  std::vector<Phase> phases_;
  std::vector<Unit> units_;
  std::vector<size_t> left_;      // units of each phase not yet scattered
  std::vector<int> group_state_;  // 0 not begun, 1 maps allocated, 2 done
  size_t groups_ = 0, tiles_ = 0;
  size_t out_w_ = 0, out_h_ = 0;
  int out_c_ = 0;
  bool fill_alpha_ = false;
  std::vector<float> outf_;
  std::vector<uint8_t> out8_;
  int out_id_ = -1;  // the RGBA output in options_.external
  uint64_t memory_ = 0, macs_ = 0;
  bool half_ = false;       // maps stored as float16
  bool recompute_ = false;  // blocks recomputed (no cat map)
  size_t strip_ = 0;        // ...streamed in strips of at most this many body pixels, or 0
  JobMemory plan_;
  // Blocks recomputed: which units were gathered, and the old x kept for those not yet gathered.
  struct Patch {
    Rect r;
    Floats v;
  };
  std::vector<char> gathered_;
  std::vector<std::vector<Patch>> patches_;
};

// An RGB plane (h*w*3 floats in [0,1]) through a raw Job with tiles of `tile` body pixels (0:
// kDefaultTile): the network's output as it is, *oh x *ow RGB floats. progress(done, total).
std::vector<float> run_raw(Network& net, const float* rgb, size_t h, size_t w, size_t tile,
                           const std::function<void(size_t, size_t)>& progress, size_t* oh, size_t* ow);

// Output width and height of a w x h input (a target size: IMDN_AS only); throws imdn::Error for
// sizes that cannot be made.
std::pair<size_t, size_t> output_size(const ModelInfo& info, size_t w, size_t h, size_t target_w = 0,
                                      size_t target_h = 0);

// Tiles of at most `tile` a side over an h x w body, as equal as the grid allows, on even
// coordinates; split further (down to 16) until there are at least min_tiles.
// Tiles start on multiples of `align`.
std::vector<Rect> plan_tiles(size_t h, size_t w, size_t tile, size_t min_tiles = 1, size_t align = 4);

}  // namespace imdn
