// A job runs a plan (plan.h) over one image: every way of running the network (one whole image,
// exact tiles inside one instance, a pool of workers each holding the model) is a loop over the
// plan's units.
//
//   imdn::Job job(net, image, options);           // plans (plan_job), refuses what does not fit
//   job.run(progress);                             // all units here, in this instance; or:
//   for each phase p:                              // a pool (wasm/core.js): units anywhere
//     for i in job.phase(p):  out = net_elsewhere.run_unit(job.gather(i)); job.scatter(i, out);
//   job.take_image();
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "image.h"
#include "maps.h"
#include "network.h"
#include "plan.h"
#include "unit.h"

namespace imdn {

class Job {
 public:
  using Phase = Plan::Phase;
  using Unit = Plan::Unit;

  // Plans the work; throws imdn::Error for images it cannot make (sizes, memory limit: before
  // anything image-sized is allocated).
  Job(Network& net, const Image& input, const JobOptions& options);
  // The plan a width x height image of `channels` channels would get (with alpha: a translucent
  // one, the larger plan), without pixels; fits = false where the Job would refuse it. Throws
  // imdn::Error for sizes that cannot be made at all.
  static JobMemory estimate(Network& net, size_t width, size_t height, int channels, const JobOptions& options) {
    return plan_job(net, assumed_shape(width, height, channels), options).memory;
  }
  ~Job();

  const Plan& plan() const { return plan_; }
  size_t units() const { return plan_.units.size(); }
  size_t tiles() const { return plan_.tiles; }  // tail units: output tiles, over all passes
  const std::vector<Phase>& phases() const { return plan_.phases; }
  const Unit& unit(size_t i) const { return plan_.units.at(i); }

  // Unit i's inputs. Every unit of the phases before its own must have been scattered.
  UnitData gather(size_t i);
  // Unit i's results into the maps or the output; returns the output rectangle it completed
  // (empty for units inside the network). The last unit of a phase runs its barrier.
  Rect scatter(size_t i, const UnitData& out);
  // Unit i in this instance: gathered, run and scattered, or for a pointwise unit run in place on
  // the maps (no copies; the same arithmetic), or streamed. Returns what scatter() does.
  Rect run_here(size_t i);
  // Every unit, in this instance. progress(done, total, rect) after each; it may throw to stop.
  void run(const std::function<void(size_t, size_t, const Rect&)>& progress = nullptr);

  size_t width() const { return plan_.out_w; }
  size_t height() const { return plan_.out_h; }
  int channels() const { return plan_.out_c; }
  const std::vector<uint8_t>& rgba8() const { return out8_; }  // options.rgba8, unless external
  const std::vector<float>& floats() const { return outf_; }   // otherwise
  // options.rgba8 with options.external: the output's buffer there (-1 before the tail, and
  // without external memory), and rectangle r of it, wherever it lives, into dst (r.h*r.w*4).
  int output_buffer() const { return out_id_; }
  void read_rgba8(const Rect& r, uint8_t* dst) const;
  Image take_image();

  // What the job holds at most at once, and how it stores its maps.
  uint64_t memory_needed() const { return plan_.memory.bytes; }
  const JobMemory& memory() const { return plan_.memory; }
  // Multiply-accumulates of the convolutions of all units (tools/bench: the cost of halos).
  uint64_t macs() const { return plan_.macs; }

 private:
  // A pass's data while the job runs: its input plane, its maps, its attention's sums and weights.
  struct Pass {
    std::vector<float> rgb;     // the input plane, h x w x 3 in [0,1]...
    std::vector<uint8_t> rgb8;  // ...or, where every value is k / 255 (8-bit images), k
    Map x, cat, acc;            // body maps: x (P x nf), cat (P x cat_channels), acc (P x nf, IMDN)
    std::vector<float> cells;   // blocks recomputed: the current block's attention sums per cell
    std::vector<float> z;       // the current block's attention weights
  };
  // Blocks recomputed: the old x under a tile written since its phase began, kept for a unit.
  struct Patch {
    Rect r;
    Floats v;
  };

  void make_planes(const Image& image);  // passes.cpp
  void check_order(const Unit& u, size_t i) const;
  void begin_group(size_t group);
  void end_phase(size_t phase);
  void attention_barrier(const Unit& first, size_t group);
  void keep_patches(size_t i);
  void input_under(const PassPlan& pp, const Pass& p, const Rect& c, Floats* out, UnitData::Header* h) const;
  Rect run_in_place(size_t i);
  void stream_unit(size_t i, const std::function<void(size_t)>& tick);  // stream.cpp
  void begin_output();                                                  // compose.cpp
  Rect compose_tail(size_t i, const UnitData& d);                       // compose.cpp

  Network& net_;
  Plan plan_;
  std::vector<std::unique_ptr<Pass>> passes_;
  std::vector<size_t> left_;      // units of each phase not yet scattered
  std::vector<int> group_state_;  // 0 not begun, 1 maps allocated, 2 done
  std::vector<char> gathered_;    // which units were gathered (or streamed)
  std::vector<std::vector<Patch>> patches_;
  std::vector<float> outf_;
  std::vector<uint8_t> out8_;
  int out_id_ = -1;  // the RGBA output in options.external
};

// An RGB plane (h*w*3 floats in [0,1]) through a raw Job with tiles of `tile` body pixels (0:
// kDefaultTile): the network's output as it is, *oh x *ow RGB floats. progress(done, total).
std::vector<float> run_raw(Network& net, const float* rgb, size_t h, size_t w, size_t tile,
                           const std::function<void(size_t, size_t)>& progress, size_t* oh, size_t* ow);

// A whole image through the network. input: h*w*3 floats, RGB in [0,1] (the network's own input
// range is applied inside); output: oh*ow*3 floats, its raw output scaled back to [0,1] (not
// clamped). h and w must be multiples of info().size_multiple (IMDN_AS: 4; Upscaler takes any
// size). tile: 0 = the whole image as one tile, else exact tiles of that many body pixels a side
// (the same bytes either way); progress(done, total) after each unit.
void run_network(Network& net, const float* input, size_t h, size_t w, float* output, size_t tile = 0,
                 const std::function<void(size_t, size_t)>& progress = nullptr);

}  // namespace imdn
