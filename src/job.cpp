// The job runner: each pass's input plane, a plan's units gathered, run and scattered in phase
// order, the barriers between phases, and the maps' lifetimes. Streaming is stream.cpp, the output
// compose.cpp, IMDN_AS's target size preprocess.cpp.
#include "job.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "attention_sums.h"
#include "preprocess.h"

namespace imdn {

namespace {

constexpr size_t kHalfChunk = 1024;  // pixels of a float16 map widened at a time (pointwise units)

std::string dims(size_t w, size_t h) { return std::to_string(w) + "x" + std::to_string(h); }

}  // namespace

Job::Job(Network& net, const Image& input, const JobOptions& o) : net_(net) {
  const size_t w = input.width, h = input.height;
  if (w == 0 || h == 0) throw Error("image is empty (" + dims(w, h) + ")");
  if (input.channels < 1 || input.channels > 4 || input.data.size() != w * h * size_t(input.channels)) {
    throw Error("malformed image: " + std::to_string(input.channels) + " channels, " +
                std::to_string(input.data.size()) + " values for " + dims(w, h));
  }
  check_job(net, w, h, o);
  // IMDN_AS with a target size: the input resized to it first (preprocess.cpp).
  const Image resized = o.target_width ? resize_to_target(input, o.target_width, o.target_height) : Image{};
  const Image& src = o.target_width ? resized : input;
  ImageShape shape = shape_of(src, o);
  shape.width = w;
  shape.height = h;
  plan_ = plan_job(net, shape, o);
  if (!plan_.memory.fits) throw Error(plan_.memory.why);
  left_.resize(plan_.phases.size());
  for (size_t i = 0; i < plan_.phases.size(); ++i) left_[i] = plan_.phases[i].count;
  gathered_.assign(plan_.units.size(), 0);
  patches_.assign(plan_.recompute ? plan_.units.size() : 0, {});
  group_state_.assign(plan_.groups, 0);
  make_planes(src);
}

// Each pass's plane: its h x w pixels from (sy, sx) of the image, the edges replicated beyond it
// (IMDN_AS's padding), the colour channels (grey: the first, spread to RGB) or alpha; as bytes
// where the plan found every value k / 255 (the same values: k / 255 again as units read them).
void Job::make_planes(const Image& image) {
  const size_t H = image.height, W = image.width, ch = size_t(image.channels);
  const float* px = image.data.data();
  passes_.clear();
  for (const PassPlan& pp : plan_.passes) {
    auto pass = std::make_unique<Pass>();
    const size_t n = pp.values();
    if (pp.eight)
      pass->rgb8.resize(n);
    else
      pass->rgb.resize(n);
    size_t i = 0;
    for (size_t y = 0; y < pp.h; ++y) {
      const float* row = px + std::min(pp.sy + y, H - 1) * W * ch;
      for (size_t x = 0; x < pp.w; ++x) {
        const float* p = row + std::min(pp.sx + x, W - 1) * ch;
        for (size_t c = 0; c < 3; ++c, ++i) {
          const float v = pp.role == PassPlan::kAlpha ? p[ch - 1] : p[pp.role == PassPlan::kGrey ? 0 : c];
          if (pp.eight)
            pass->rgb8[i] = uint8_t(std::nearbyint(v * 255.f));
          else
            pass->rgb[i] = v;
        }
      }
    }
    passes_.push_back(std::move(pass));
  }
}

Job::~Job() {
  if (out_id_ >= 0) plan_.options.external->release(out_id_);
}

void Job::begin_group(size_t g) {
  if (group_state_[g] != 0) return;
  const size_t nf = net_.features(), cc = net_.cat_channels();
  ExternalStore* external = plan_.options.external;
  Workspace* ws = &net_.workspace();
  for (size_t i = 0; i < passes_.size(); ++i) {
    const PassPlan& pp = plan_.passes[i];
    Pass& p = *passes_[i];
    if (pp.group != g) continue;
    const size_t P = pp.bh * pp.bw;
    // (x and acc may live outside; cat, whose sums are taken in place, here.)
    p.x.allocate(P * nf, plan_.half, external, ws);
    if (!plan_.recompute) p.cat.allocate(P * cc, plan_.half, nullptr, ws);
    if (plan_.recompute && net_.has_attention()) p.cells.assign(cells(pp.bh) * cells(pp.bw) * 4 * cc, 0.f);
    if (net_.has_fusion()) {
      p.acc.allocate(P * nf, plan_.half, external, ws);
      p.acc.zero(P * nf);
    }
  }
  group_state_[g] = 1;
}

// The input pixels under body rect c, into out; their size into the header.
void Job::input_under(const PassPlan& pp, const Pass& p, const Rect& c, Floats* out, UnitData::Header* h) const {
  const size_t S = net_.stem_stride(), iy = c.y * S, ix = c.x * S;
  const Rect in{iy, ix, std::min(pp.h, (c.y + c.h) * S) - iy, std::min(pp.w, (c.x + c.w) * S) - ix};
  if (p.rgb.size() + p.rgb8.size() != pp.values()) throw Error("unit gathered after its pass's input was released");
  if (pp.eight)
    take(p.rgb8.data(), pp.w, in, 3, out, net_.pool());
  else
    take(p.rgb.data(), pp.w, in, 3, out, net_.pool());
  h->ih = uint32_t(in.h);
  h->iw = uint32_t(in.w);
}

UnitData Job::gather(size_t i) {
  const Unit& u = plan_.units.at(i);
  const PassPlan& pp = plan_.passes[u.pass];
  Pass& p = *passes_[u.pass];
  if (u.phase > 0 && left_[u.phase - 1] != 0) throw Error("unit gathered before the phase before it finished");
  if (plan_.streamed(u)) throw Error("a streamed block runs in its job's own instance (Job::run_here), not gathered");
  begin_group(pp.group);
  gathered_[i] = 1;
  const pthreadpool_t pool = net_.pool();
  const size_t nf = net_.features(), cc = net_.cat_channels(), r = net_.upsample();
  UnitData d;
  UnitData::Header& h = d.head;
  h.kind = uint32_t(u.kind);
  h.block = uint32_t(u.block);
  h.h = uint32_t(u.crop.h);
  h.w = uint32_t(u.crop.w);
  h.cy = uint32_t(u.tile.y - u.crop.y);
  h.cx = uint32_t(u.tile.x - u.crop.x);
  h.ch = uint32_t(u.tile.h);
  h.cw = uint32_t(u.tile.w);
  switch (u.kind) {
    case UnitKind::kStem: input_under(pp, p, u.crop, &d.a[0], &h); break;
    case UnitKind::kBlockA:
    case UnitKind::kBlockSums: p.x.take(pp.bw, u.crop, nf, &d.a[0], pool); break;
    case UnitKind::kBlockWhole: {
      d.a[0].assign(p.z.begin(), p.z.end());
      p.x.take(pp.bw, u.crop, nf, &d.a[1], pool);
      // The old values under tiles that were written since this phase began.
      for (const Patch& old : patches_[i]) {
        copy_rect(old.v.data(), old.r.w, 0, 0, d.a[1].data(), u.crop.w, old.r.y - u.crop.y, old.r.x - u.crop.x, old.r.h,
                  old.r.w, nf, pool);
      }
      std::vector<Patch>().swap(patches_[i]);
      if (net_.has_fusion()) p.acc.take(pp.bw, u.tile, nf, &d.a[2], pool);
      break;
    }
    case UnitKind::kBlockB: {
      const size_t n = u.p1 - u.p0;
      h.pixels = uint32_t(n);
      d.a[0].assign(p.z.begin(), p.z.end());
      d.a[1].resize(n * cc);
      p.cat.read_pixels(u.p0, u.p1, cc, d.a[1].data(), pool);
      d.a[2].resize(n * nf);
      p.x.read_pixels(u.p0, u.p1, nf, d.a[2].data(), pool);
      if (net_.has_fusion()) {
        d.a[3].resize(n * nf);
        p.acc.read_pixels(u.p0, u.p1, nf, d.a[3].data(), pool);
      }
      break;
    }
    case UnitKind::kTail: {
      begin_output();
      (net_.has_fusion() ? p.acc : p.x).take(pp.bw, u.crop, nf, &d.a[0], pool);
      input_under(pp, p, u.wide, &d.a[1], &h);
      h.ay = uint32_t(u.crop.y - u.wide.y);
      h.ax = uint32_t(u.crop.x - u.wide.x);
      const size_t oh = pp.h * net_.info().scale, ow = pp.w * net_.info().scale;
      h.oh = uint32_t(std::min(oh, (u.tile.y + u.tile.h) * r) - u.tile.y * r);
      h.ow = uint32_t(std::min(ow, (u.tile.x + u.tile.w) * r) - u.tile.x * r);
      break;
    }
  }
  return d;
}

Rect Job::scatter(size_t i, const UnitData& d) {
  const Unit& u = plan_.units.at(i);
  const PassPlan& pp = plan_.passes[u.pass];
  Pass& p = *passes_[u.pass];
  if (group_state_[pp.group] != 1 || left_[u.phase] == 0) throw Error("unit scattered out of order");
  const pthreadpool_t pool = net_.pool();
  const size_t nf = net_.features(), cc = net_.cat_channels();
  auto expect = [](bool ok) {
    if (!ok) throw Error("unit result does not match its unit");
  };
  expect(d.head.kind == uint32_t(u.kind));
  const size_t n = u.tile.h * u.tile.w;
  const size_t fused = net_.has_fusion() ? (traits(u.kind).pointwise ? u.p1 - u.p0 : n) * nf : 0;
  Rect done;
  switch (u.kind) {
    case UnitKind::kStem:
      expect(d.a[0].size() == n * nf);
      p.x.put(d.a[0].data(), u.tile, nf, pp.bw, pool);
      break;
    case UnitKind::kBlockA:
      expect(d.a[0].size() == n * cc);
      p.cat.put(d.a[0].data(), u.tile, cc, pp.bw, pool);
      break;
    case UnitKind::kBlockSums: {
      const size_t rows = cells(u.tile.h), cols = cells(u.tile.w), grid = cells(pp.bw), C4 = 4 * cc;
      expect(d.a[0].size() == rows * cols * C4 && u.tile.y % kCell == 0 && u.tile.x % kCell == 0);
      for (size_t k = 0; k < rows; ++k) {
        std::copy_n(d.a[0].data() + k * cols * C4, cols * C4,
                    p.cells.data() + ((u.tile.y / kCell + k) * grid + u.tile.x / kCell) * C4);
      }
      break;
    }
    case UnitKind::kBlockWhole:
      expect(d.a[0].size() == n * nf && d.a[1].size() == fused);
      keep_patches(i);
      p.x.put(d.a[0].data(), u.tile, nf, pp.bw, pool);
      if (net_.has_fusion()) p.acc.put(d.a[1].data(), u.tile, nf, pp.bw, pool);
      break;
    case UnitKind::kBlockB:
      expect(d.a[0].size() == (u.p1 - u.p0) * nf && d.a[1].size() == fused);
      p.x.write_pixels(d.a[0].data(), u.p0, u.p1, nf, pool);
      if (net_.has_fusion()) p.acc.write_pixels(d.a[1].data(), u.p0, u.p1, nf, pool);
      break;
    case UnitKind::kTail: done = compose_tail(i, d); break;
  }
  if (--left_[u.phase] == 0) end_phase(u.phase);
  return done;
}

// Before x changes under unit i's tile (recomputed blocks): its old values for the crops of its
// phase that still have to be gathered or streamed.
void Job::keep_patches(size_t i) {
  const Unit& u = plan_.units[i];
  const Phase& ph = plan_.phases[u.phase];
  const Pass& p = *passes_[u.pass];
  for (size_t j = ph.begin; j < ph.begin + ph.count; ++j) {
    if (j == i || gathered_[j] || plan_.units[j].pass != u.pass) continue;
    const Rect r = intersect(plan_.units[j].crop, u.tile);
    if (r.empty()) continue;
    Patch old{r, {}};
    p.x.take(plan_.passes[u.pass].bw, r, net_.features(), &old.v, net_.pool());
    patches_[j].push_back(std::move(old));
  }
}

// The barrier after a block's part A: each pass's attention weights from its whole map, summed
// by cells: from the map, or as the units of a recomputed block gave them.
void Job::attention_barrier(const Unit& first, size_t g) {
  const size_t cc = net_.cat_channels();
  for (size_t i = 0; i < passes_.size(); ++i) {
    const PassPlan& pp = plan_.passes[i];
    Pass& p = *passes_[i];
    if (pp.group != g) continue;
    const size_t P = pp.bh * pp.bw, n = cells(pp.bh) * cells(pp.bw);
    if (first.kind == UnitKind::kBlockA) {
      p.cells.resize(n * 4 * cc);
      if (p.cat.half())
        cell_sums(p.cat.f16(), pp.bw, pp.bh, pp.bw, cc, p.cells.data(), net_.pool());
      else
        cell_sums(p.cat.f32(), pp.bw, pp.bh, pp.bw, cc, p.cells.data(), net_.pool());
    }
    p.z = net_.stage_attention(first.block, add_cells(p.cells.data(), n, cc, P));
    if (first.kind == UnitKind::kBlockA) std::vector<float>().swap(p.cells);
  }
}

void Job::end_phase(size_t phase) {
  const Unit& first = plan_.units[plan_.phases[phase].begin];
  const size_t g = plan_.passes[first.pass].group;
  if (traits(first.kind).before_sums && net_.has_attention()) attention_barrier(first, g);
  const bool last_block = traits(first.kind).block_end && first.block + 1 == net_.blocks();
  for (size_t i = 0; i < passes_.size(); ++i) {
    Pass& p = *passes_[i];
    if (plan_.passes[i].group != g) continue;
    if (last_block) {
      // The tail reads acc alone (IMDN; else x): the rest goes back before the output is made.
      p.cat.release();
      if (net_.has_fusion()) p.x.release();
    }
    if (first.kind == UnitKind::kTail) {
      p.x.release();
      p.cat.release();
      p.acc.release();
      std::vector<float>().swap(p.rgb);
      std::vector<uint8_t>().swap(p.rgb8);
      std::vector<float>().swap(p.cells);
    }
  }
  if (first.kind == UnitKind::kTail) group_state_[g] = 2;
}

void Job::check_order(const Unit& u, size_t i) const {
  if (u.phase > 0 && left_[u.phase - 1] != 0) throw Error("unit run before the phase before it finished");
  if (left_[u.phase] == 0 || (gathered_[i] && plan_.streamed(u))) throw Error("unit run twice");
}

Rect Job::run_here(size_t i) {
  const Unit& u = plan_.units.at(i);
  if (plan_.streamed(u)) {
    stream_unit(i, nullptr);
    return {};
  }
  if (traits(u.kind).through_data) return scatter(i, run_unit(net_, gather(i)));
  return run_in_place(i);
}

// Stem, block A and B units straight on the maps (the same arithmetic as a gathered unit).
Rect Job::run_in_place(size_t i) {
  const Unit& u = plan_.units.at(i);
  check_order(u, i);
  const PassPlan& pp = plan_.passes[u.pass];
  Pass& p = *passes_[u.pass];
  begin_group(pp.group);
  const size_t nf = net_.features(), cc = net_.cat_channels();
  const pthreadpool_t pool = net_.pool();
  Workspace& ws = net_.workspace();
  const float* z = p.z.empty() ? nullptr : p.z.data();
  if (u.kind == UnitKind::kBlockB && !plan_.half) {
    // Pointwise: in place on the maps (no copies).
    net_.stage_block_b(u.block, z, p.cat.f32() + u.p0 * cc, p.x.f32() + u.p0 * nf,
                       net_.has_fusion() ? p.acc.f32() + u.p0 * nf : nullptr, u.p1 - u.p0);
  } else if (u.kind == UnitKind::kBlockB) {
    // Float16 maps: widened a cache-sized run of pixels at a time (pointwise, so the same values).
    const bool fusion = net_.has_fusion();
    for (size_t a = u.p0; a < u.p1; a += kHalfChunk) {
      const size_t b = std::min(u.p1, a + kHalfChunk), n = b - a;
      float *cat = ws.get(0, n * cc), *x = ws.get(1, n * nf), *acc = fusion ? ws.get(2, n * nf) : nullptr;
      p.cat.read_pixels(a, b, cc, cat, pool);
      p.x.read_pixels(a, b, nf, x, pool);
      if (fusion) p.acc.read_pixels(a, b, nf, acc, pool);
      net_.stage_block_b(u.block, z, cat, x, acc, n);
      p.x.write_pixels(x, a, b, nf, pool);
      if (fusion) p.acc.write_pixels(acc, a, b, nf, pool);
    }
  } else {
    // Stem and block A read their crop and write their core straight from and to the maps where
    // the rows allow (a crop of whole rows is contiguous: a single tile copies nothing), else
    // through the workspace. (Float16 maps: always through the workspace.)
    const size_t C = u.kind == UnitKind::kStem ? nf : cc;
    Map& map = u.kind == UnitKind::kStem ? p.x : p.cat;
    const bool rows = u.crop.x == 0 && u.crop.w == pp.bw && !plan_.half;
    const bool direct_out = rows && u.tile.y == u.crop.y && u.tile.h == u.crop.h;
    float* out = direct_out ? map.f32() + u.crop.y * pp.bw * C : ws.get(0, u.crop.h * u.crop.w * C);
    if (u.kind == UnitKind::kStem) {
      UnitData d = gather(i);  // the RGB crop: 3 channels, small
      net_.stage_stem(d.a[0].data(), d.head.ih, d.head.iw, out);
    } else {
      const float* in = rows ? p.x.f32() + u.crop.y * pp.bw * nf : nullptr;
      if (!rows) {
        float* crop = ws.get(1, u.crop.h * u.crop.w * nf);
        p.x.read(pp.bw, u.crop.y, u.crop.x, crop, u.crop.w, 0, 0, u.crop.h, u.crop.w, nf, pool);
        in = crop;
      }
      net_.stage_block_a(u.block, in, u.crop.h, u.crop.w, out);
    }
    if (!direct_out) {
      map.write(out, u.crop.w, u.tile.y - u.crop.y, u.tile.x - u.crop.x, pp.bw, u.tile.y, u.tile.x, u.tile.h, u.tile.w,
                C, pool);
    }
  }
  if (--left_[u.phase] == 0) end_phase(u.phase);
  return {};
}

void Job::run(const std::function<void(size_t, size_t, const Rect&)>& progress) {
  // (Progress counts units, a streamed one as one step per 64 rows: Plan::weight.)
  size_t total = 0, done = 0;
  for (size_t i = 0; i < plan_.units.size(); ++i) total += plan_.weight(i);
  for (size_t i = 0; i < plan_.units.size(); ++i) {
    const size_t base = done;
    Rect rect;
    if (plan_.streamed(plan_.units[i])) {
      stream_unit(i, [&](size_t k) {
        if (progress && k < plan_.weight(i)) progress(base + k, total, Rect{});
      });
    } else {
      rect = run_here(i);
    }
    done = base + plan_.weight(i);
    if (progress) progress(done, total, rect);
  }
}

std::vector<float> run_raw(Network& net, const float* rgb, size_t h, size_t w, size_t tile,
                           const std::function<void(size_t, size_t)>& progress, size_t* oh, size_t* ow) {
  Image in;
  in.width = w;
  in.height = h;
  in.channels = 3;
  in.data.assign(rgb, rgb + h * w * 3);
  JobOptions o;
  o.raw = true;
  o.tile = tile;
  Job job(net, in, o);
  std::function<void(size_t, size_t, const Rect&)> units;
  if (progress) units = [&](size_t done, size_t total, const Rect&) { progress(done, total); };
  job.run(units);
  *oh = job.height();
  *ow = job.width();
  return job.take_image().data;
}

void run_network(Network& net, const float* input, size_t h, size_t w, float* output, size_t tile,
                 const std::function<void(size_t, size_t)>& progress) {
  const ModelInfo& i = net.info();
  if (h % i.size_multiple || w % i.size_multiple) {
    throw Error(std::string(arch_name(i.arch)) + " needs sides that are multiples of " +
                std::to_string(i.size_multiple) + ", got " + std::to_string(w) + "x" + std::to_string(h) +
                " (imdn::Upscaler takes any size)");
  }
  // The whole image: one tile as large as the body.
  const size_t S = net.stem_stride();
  size_t oh = 0, ow = 0;
  const std::vector<float> out =
      run_raw(net, input, h, w, tile ? tile : std::max<size_t>(8, std::max((h + S - 1) / S, (w + S - 1) / S)), progress,
              &oh, &ow);
  std::copy(out.begin(), out.end(), output);
}

}  // namespace imdn
