#include "architecture.h"

#include <string>

namespace imdn {

uint32_t BlockSpec::cat_channels() const { return distilled * uint32_t(steps.size() - 1) + steps.back().cout; }

uint32_t Architecture::stem_stride() const {
  uint32_t s = 1;
  for (const ConvSpec& c : stem) s *= c.stride;
  return s;
}

namespace {

ConvSpec conv(std::string name, uint32_t cin, uint32_t cout, uint32_t kernel, Act act = Act::kNone, uint32_t stride = 1,
              bool bias = true) {
  ConvSpec c;
  c.name = std::move(name);
  c.cin = cin;
  c.cout = cout;
  c.kernel = kernel;
  c.stride = stride;
  c.bias = bias;
  c.act = act;
  return c;
}

// IMDModule / IMDModule_speed: c1 nf->nf, c2 and c3 (nf-d)->nf, c4 (nf-d)->d; LeakyReLU after c1-c3.
BlockSpec imdb(uint32_t nf, bool cca) {
  BlockSpec b;
  b.nf = nf;
  b.distilled = nf / 4;
  const uint32_t rem = nf - b.distilled;
  b.steps = {conv("c1", nf, nf, 3, Act::kLeakyReLU), conv("c2", rem, nf, 3, Act::kLeakyReLU),
             conv("c3", rem, nf, 3, Act::kLeakyReLU), conv("c4", rem, b.distilled, 3)};
  b.cca = cca;
  b.fuse = conv("fuse", b.cat_channels(), nf, 1);
  return b;
}

// IMDModule_Large (IMDN_RTE): six steps, ReLU after each, no biases.
BlockSpec imdb_large(uint32_t nf) {
  BlockSpec b;
  b.nf = nf;
  b.distilled = nf / 4;
  const uint32_t d = b.distilled, rem = nf - d;
  b.steps = {conv("c1", nf, nf, 3, Act::kReLU, 1, false),           conv("c2", rem, nf, 3, Act::kReLU, 1, false),
             conv("c3", rem, nf, 3, Act::kReLU, 1, false),          conv("c4", rem, rem, 3, Act::kReLU, 1, false),
             conv("c5", rem - d, rem - d, 3, Act::kReLU, 1, false), conv("c6", d, d, 3, Act::kReLU, 1, false)};
  b.fuse = conv("fuse", b.cat_channels(), nf, 1, Act::kNone, 1, false);
  return b;
}

}  // namespace

Architecture Architecture::of(const ModelInfo& info) {
  const uint32_t nf = info.nf, r = info.upsample;
  auto require = [&](bool ok, const std::string& what) {
    if (!ok) throw Error(std::string("model header is inconsistent for ") + arch_name(info.arch) + ": " + what);
  };
  require(info.blocks >= 1 && info.blocks <= 64, "blocks must be 1..64, got " + std::to_string(info.blocks));
  require(r >= 1 && r <= 8, "upsample factor must be 1..8, got " + std::to_string(r));
  Architecture a;
  a.blocks = info.blocks;
  a.upsample = r;
  switch (info.arch) {
    case Arch::kIMDN:
    case Arch::kIMDN_AS:
      require(nf >= 16 && nf <= 512 && nf % 16 == 0, "nf must be a multiple of 16 up to 512");
      if (info.arch == Arch::kIMDN) {
        require(info.scale == r && info.size_multiple == 1, "scale must equal the upsample factor");
        a.stem = {conv("stem.0", 3, nf, 3)};
      } else {
        require(info.scale == 1 && r == 4 && info.size_multiple == 4, "IMDN_AS restores at scale 1 with x4 upsampling");
        a.stem = {conv("stem.0", 3, nf, 3, Act::kLeakyReLU, 2), conv("stem.1", nf, nf, 3, Act::kNone, 2)};
      }
      a.block = imdb(nf, true);
      a.fusion = true;
      a.lr = conv("lr", nf, nf, 3);
      break;
    case Arch::kIMDN_RTC:
      require(nf >= 4 && nf <= 512 && nf % 4 == 0, "nf must be a multiple of 4");
      require(info.scale == r && info.size_multiple == 1, "scale must equal the upsample factor");
      a.stem = {conv("stem.0", 3, nf, 3)};
      a.block = imdb(nf, false);
      a.lr = conv("lr", nf, nf, 1);
      break;
    case Arch::kIMDN_RTE:
      require(nf >= 8 && nf <= 512 && nf % 4 == 0, "nf must be a multiple of 4");
      require(r % 2 == 0 && info.scale * 2 == r && info.size_multiple == 1, "scale must be half the upsample factor");
      a.stem = {conv("stem.0", 3, nf, 3, Act::kReLU), conv("stem.1", nf, nf, 3, Act::kNone, 2, false)};
      a.block = imdb_large(nf);
      a.lr = conv("lr", nf, nf, 1, Act::kNone, 1, false);
      break;
    default: throw Error("unknown architecture id " + std::to_string(uint32_t(info.arch)));
  }
  a.up = conv("up", nf, 3 * r * r, 3);
  return a;
}

namespace {
uint64_t conv_macs(const ConvSpec& c) { return uint64_t(c.cin) * c.cout * c.kernel * c.kernel; }
}  // namespace

uint64_t Architecture::macs_stem(size_t h, size_t w) const {
  uint64_t total = 0;
  for (const ConvSpec& c : stem) {
    h = (h + c.stride - 1) / c.stride;
    w = (w + c.stride - 1) / c.stride;
    total += conv_macs(c) * h * w;
  }
  return total;
}

uint64_t Architecture::macs_block_a_per_pixel() const {
  uint64_t total = 0;
  for (const ConvSpec& c : block.steps) total += conv_macs(c);
  return total;
}

// The attention's tiny 1x1 layers run once per image and are left out.
uint64_t Architecture::macs_block_b_per_pixel() const {
  return conv_macs(block.fuse) + (fusion ? uint64_t(block.nf) * block.nf : 0);
}

uint64_t Architecture::macs_tail_per_pixel() const { return conv_macs(lr) + conv_macs(up); }

uint64_t Architecture::macs(size_t h, size_t w) const {
  const uint64_t s = stem_stride();
  const uint64_t body = ((h + s - 1) / s) * ((w + s - 1) / s);
  return macs_stem(h, w) +
         body * (uint64_t(blocks) * (macs_block_a_per_pixel() + macs_block_b_per_pixel()) + macs_tail_per_pixel());
}

std::vector<std::pair<std::string, std::vector<uint32_t>>> Architecture::tensors() const {
  std::vector<std::pair<std::string, std::vector<uint32_t>>> out;
  auto add = [&](const std::string& prefix, const ConvSpec& c) {
    out.push_back({prefix + c.name + ".weight", {c.cout, c.cin, c.kernel, c.kernel}});
    if (c.bias) out.push_back({prefix + c.name + ".bias", {c.cout}});
  };
  for (const ConvSpec& c : stem) add("", c);
  for (uint32_t i = 0; i < blocks; ++i) {
    const std::string p = "blocks." + std::to_string(i) + ".";
    for (const ConvSpec& c : block.steps) add(p, c);
    if (block.cca) {
      const uint32_t cc = block.cat_channels();
      add(p, conv("cca.0", cc, cc / 16, 1));
      add(p, conv("cca.1", cc / 16, cc, 1));
    }
    add(p, block.fuse);
  }
  if (fusion) add("", conv("fusion", block.nf * blocks, block.nf, 1, Act::kLeakyReLU));
  add("", lr);
  add("", up);
  return out;
}

}  // namespace imdn
