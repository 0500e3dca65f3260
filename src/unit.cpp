#include "unit.h"

#include <cstring>
#include <string>

#include "attention_sums.h"

namespace imdn {

namespace {

constexpr uint32_t kMagic = 0x54494e55;  // "UNIT"

// The core (cy, cx, ch, cw) of an h x w map with C channels, contiguous.
Floats core_of(const float* data, size_t w, const UnitData::Header& h, size_t C, pthreadpool_t pool) {
  Floats out(size_t(h.ch) * h.cw * C);
  copy_rect(data, w, h.cy, h.cx, out.data(), h.cw, 0, 0, h.ch, h.cw, C, pool);
  return out;
}

}  // namespace

void UnitData::write_prefix(uint8_t* p) const {
  const uint32_t n[4] = {uint32_t(a[0].size()), uint32_t(a[1].size()), uint32_t(a[2].size()), uint32_t(a[3].size())};
  std::memcpy(p, &kMagic, sizeof(kMagic));
  std::memcpy(p + sizeof(kMagic), &head, sizeof(Header));
  std::memcpy(p + sizeof(kMagic) + sizeof(Header), n, sizeof(n));
}

size_t UnitData::encoded_size() const {
  size_t bytes = kPrefix;
  for (const auto& v : a) bytes += v.size() * sizeof(float);
  return bytes;
}

UnitData UnitData::read_prefix(const uint8_t* bytes, size_t size) {
  UnitData d;
  uint32_t magic = 0, n[4];
  if (size < kPrefix) throw Error("unit message too short");
  std::memcpy(&magic, bytes, sizeof(magic));
  if (magic != kMagic) throw Error("not a unit message");
  std::memcpy(&d.head, bytes + sizeof(magic), sizeof(Header));
  std::memcpy(n, bytes + sizeof(magic) + sizeof(Header), sizeof(n));
  size_t at = kPrefix;
  for (size_t i = 0; i < 4; ++i) {
    if (n[i] > (size - at) / sizeof(float)) throw Error("unit message truncated");
    d.a[i].resize(n[i]);
    at += n[i] * sizeof(float);
  }
  if (at != size) throw Error("unit message has trailing bytes");
  return d;
}

std::vector<uint8_t> UnitData::encode() const {
  std::vector<uint8_t> out(encoded_size());
  write_prefix(out.data());
  uint8_t* p = out.data() + kPrefix;
  for (const auto& v : a) {
    if (!v.empty()) std::memcpy(p, v.data(), v.size() * sizeof(float));
    p += v.size() * sizeof(float);
  }
  return out;
}

UnitData UnitData::decode(const uint8_t* bytes, size_t size) {
  UnitData d = read_prefix(bytes, size);
  const uint8_t* p = bytes + kPrefix;
  for (auto& v : d.a) {
    if (!v.empty()) std::memcpy(v.data(), p, v.size() * sizeof(float));
    p += v.size() * sizeof(float);
  }
  return d;
}

UnitData run_unit(Network& net, UnitData in) {
  const UnitData::Header& h = in.head;
  const size_t nf = net.features(), cc = net.cat_channels(), S = net.stem_stride(), r = net.upsample();
  const size_t P = size_t(h.h) * h.w;
  auto need = [](bool ok, const char* what) {
    if (!ok) throw Error(std::string("unit: ") + what);
  };
  const bool core_ok = h.ch && h.cw && size_t(h.cy) + h.ch <= h.h && size_t(h.cx) + h.cw <= h.w;
  const bool block_ok = h.block < net.blocks();
  Workspace& ws = net.workspace();
  UnitData out;
  out.head = h;
  switch (UnitKind(h.kind)) {
    case UnitKind::kStem: {
      need(core_ok && (h.ih + S - 1) / S == h.h && (h.iw + S - 1) / S == h.w, "stem crop sizes disagree");
      need(in.a[0].size() == size_t(h.ih) * h.iw * 3, "stem input does not match the crop");
      float* fea = ws.get(0, P * nf);
      net.stage_stem(in.a[0].data(), h.ih, h.iw, fea);
      out.a[0] = core_of(fea, h.w, h, nf, net.pool());
      return out;
    }
    case UnitKind::kBlockA: {
      need(core_ok && block_ok && in.a[0].size() == P * nf, "block input does not match the crop");
      float* cat = ws.get(0, P * cc);
      net.stage_block_a(h.block, in.a[0].data(), h.h, h.w, cat);
      out.a[0] = core_of(cat, h.w, h, cc, net.pool());
      return out;
    }
    case UnitKind::kBlockB: {
      const size_t n = h.pixels;
      need(block_ok && in.a[0].size() == (net.has_attention() ? cc : 0) && in.a[1].size() == n * cc &&
               in.a[2].size() == n * nf && in.a[3].size() == (net.has_fusion() ? n * nf : 0),
           "pointwise data does not match its pixel count");
      net.stage_block_b(h.block, in.a[0].empty() ? nullptr : in.a[0].data(), in.a[1].data(), in.a[2].data(),
                        in.a[3].empty() ? nullptr : in.a[3].data(), n);
      out.a[0] = std::move(in.a[2]);
      out.a[1] = std::move(in.a[3]);
      return out;
    }
    case UnitKind::kBlockSums: {
      need(core_ok && block_ok && in.a[0].size() == P * nf, "block input does not match the crop");
      float* cat = ws.get(0, P * cc);
      net.stage_block_a(h.block, in.a[0].data(), h.h, h.w, cat);
      out.a[0].resize(cells(h.ch) * cells(h.cw) * 4 * cc);
      cell_sums(cat + (size_t(h.cy) * h.w + h.cx) * cc, h.w, h.ch, h.cw, cc, out.a[0].data(), net.pool());
      return out;
    }
    case UnitKind::kBlockWhole: {
      const size_t n = size_t(h.ch) * h.cw;
      need(core_ok && block_ok && in.a[0].size() == (net.has_attention() ? cc : 0) && in.a[1].size() == P * nf &&
               in.a[2].size() == (net.has_fusion() ? n * nf : 0),
           "block data does not match the crop");
      float* cat = ws.get(0, P * cc);
      net.stage_block_a(h.block, in.a[1].data(), h.h, h.w, cat);
      // The rest on the core alone: the same pointwise arithmetic as kBlockB's.
      Floats core_cat = core_of(cat, h.w, h, cc, net.pool());
      out.a[0] = core_of(in.a[1].data(), h.w, h, nf, net.pool());
      out.a[1] = std::move(in.a[2]);
      net.stage_block_b(h.block, in.a[0].empty() ? nullptr : in.a[0].data(), core_cat.data(), out.a[0].data(),
                        out.a[1].empty() ? nullptr : out.a[1].data(), n);
      return out;
    }
    case UnitKind::kTail: {
      const size_t fw = (h.iw + S - 1) / S, fh = (h.ih + S - 1) / S;
      need(core_ok && size_t(h.ay) + h.h <= fh && size_t(h.ax) + h.w <= fw, "tail crop outside the stem's features");
      need(h.oh && h.ow && h.oh <= h.ch * r && h.ow <= h.cw * r, "tail output outside its core");
      need(in.a[0].size() == P * nf && in.a[1].size() == size_t(h.ih) * h.iw * 3, "tail data does not match the crop");
      float *wide = ws.get(0, fw * fh * nf), *fea = ws.get(1, P * nf), *rgb = ws.get(2, P * r * r * 3);
      net.stage_stem(in.a[1].data(), h.ih, h.iw, wide);
      copy_rect(wide, fw, h.ay, h.ax, fea, h.w, 0, 0, h.h, h.w, nf, net.pool());
      net.stage_tail(in.a[0].data(), fea, h.h, h.w, rgb, h.h * r, h.w * r);
      out.a[0].resize(size_t(h.oh) * h.ow * 3);
      copy_rect(rgb, h.w * r, h.cy * r, h.cx * r, out.a[0].data(), h.ow, 0, 0, h.oh, h.ow, 3, net.pool());
      return out;
    }
  }
  throw Error("unit of an unknown kind " + std::to_string(h.kind));
}

}  // namespace imdn
