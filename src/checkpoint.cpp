// PyTorch checkpoint reader: see checkpoint.h.
#include "checkpoint.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "bytes.h"
#include "half.h"
#include "pickle.h"
#include "zip.h"

namespace imdn {

namespace {

using pickle::element_size;
using pickle::Kind;
using pickle::kind_name;
using pickle::StorageInfo;
using pickle::Unpickler;
using pickle::Value;

// ---------------------------------------------------------------------------------------------
// State dict -> canonical tensors

const Value* find(const Value* dict, const std::string& key) {
  for (size_t i = dict->items.size(); i >= 2; i -= 2) {  // the last assignment wins
    const Value* k = dict->items[i - 2];
    if (k->kind == Kind::kStr && k->s == key) return dict->items[i - 1];
  }
  return nullptr;
}

// name -> tensor description, from the state dict (or a dict holding one as 'state_dict' etc.).
std::map<std::string, const Value*> state_dict(const Value* top) {
  if (top->kind != Kind::kDict) {
    throw Error(std::string("checkpoint holds ") + kind_name(top->kind) + ", not a state dict");
  }
  for (const char* wrapper : {"state_dict", "model", "params_ema", "params", "net"}) {
    const Value* inner = find(top, wrapper);
    if (inner && inner->kind == Kind::kDict) {
      top = inner;
      break;
    }
  }
  std::map<std::string, const Value*> out;
  for (size_t i = 0; i + 1 < top->items.size(); i += 2) {
    const Value* k = top->items[i];
    const Value* v = top->items[i + 1];
    if (k->kind != Kind::kStr || v->kind != Kind::kTensor) continue;  // e.g. metadata
    std::string name = k->s;
    if (name.compare(0, 7, "module.") == 0) name = name.substr(7);  // DataParallel
    out[name] = v;
  }
  if (out.empty()) throw Error("checkpoint holds no tensors: not a state dict of a network");
  return out;
}

using Names = std::map<std::string, const Value*>;

const Value* tensor(const Names& sd, const std::string& name) {
  auto it = sd.find(name);
  return it == sd.end() ? nullptr : it->second;
}

uint32_t dim(const Names& sd, const std::string& name, size_t axis) {
  const Value* t = tensor(sd, name);
  if (!t || t->size.size() <= axis || t->size[axis] > 4096)
    throw Error("checkpoint tensor " + name + " is missing or malformed");
  return uint32_t(t->size[axis]);
}

uint32_t count_blocks(const Names& sd, const std::string& before, const std::string& after, uint32_t first) {
  uint32_t n = 0;
  while (n < 256 && tensor(sd, before + std::to_string(first + n) + after)) ++n;
  return n;
}

}  // namespace

std::string pytorch_name(Arch arch, uint32_t blocks, const std::string& canonical) {
  auto starts = [&](const char* p) { return canonical.compare(0, std::strlen(p), p) == 0; };
  const size_t dot = canonical.rfind('.');
  const std::string leaf = canonical.substr(dot);  // ".weight" / ".bias"
  const std::string layer = canonical.substr(0, dot);
  if (starts("blocks.")) {
    const size_t a = 7, b = canonical.find('.', a);
    const uint32_t k = uint32_t(std::stoul(canonical.substr(a, b - a)));
    std::string part = canonical.substr(b + 1, dot - b - 1);  // c1 / cca.0 / fuse
    std::string block;
    switch (arch) {
      case Arch::kIMDN:
      case Arch::kIMDN_AS: block = "IMDB" + std::to_string(k + 1); break;
      case Arch::kIMDN_RTC: block = "model.1.sub." + std::to_string(k); break;
      case Arch::kIMDN_RTE: block = "block" + std::to_string(k + 1); break;
    }
    if (part == "cca.0") part = "cca.conv_du.0";
    if (part == "cca.1") part = "cca.conv_du.2";
    if (part == "fuse") part = arch == Arch::kIMDN_RTE ? "c7" : "c5";
    return block + "." + part + leaf;
  }
  if (arch == Arch::kIMDN_RTC) {
    if (layer == "stem.0") return "model.0" + leaf;
    if (layer == "lr") return "model.1.sub." + std::to_string(blocks) + leaf;
    if (layer == "up") return "model.2" + leaf;
  }
  if (layer == "stem.0") return (arch == Arch::kIMDN ? "fea_conv" : "fea_conv.0") + leaf;
  if (layer == "stem.1") return "fea_conv.2" + leaf;
  if (layer == "fusion") return "c.0" + leaf;
  if (layer == "lr") return "LR_conv" + leaf;
  if (layer == "up") return "upsampler.0" + leaf;
  return canonical;
}

namespace {

// Architecture and hyper-parameters from the tensors present and their shapes.
ModelInfo identify(const Names& sd) {
  ModelInfo i;
  auto has = [&](const char* n) { return tensor(sd, n) != nullptr; };
  std::string up = "upsampler.0.weight";
  if (has("model.0.weight") && has("model.1.sub.0.c1.weight")) {
    i.arch = Arch::kIMDN_RTC;
    i.nf = dim(sd, "model.0.weight", 0);
    i.blocks = count_blocks(sd, "model.1.sub.", ".c1.weight", 0);
    up = "model.2.weight";
  } else if (has("block1.c7.weight") && has("fea_conv.0.weight")) {
    i.arch = Arch::kIMDN_RTE;
    i.nf = dim(sd, "fea_conv.0.weight", 0);
    i.blocks = count_blocks(sd, "block", ".c1.weight", 1);
    i.input_range = 255.f;
  } else if (has("IMDB1.c1.weight") && has("fea_conv.2.weight")) {
    i.arch = Arch::kIMDN_AS;
    i.nf = dim(sd, "fea_conv.0.weight", 0);
    i.blocks = count_blocks(sd, "IMDB", ".c1.weight", 1);
    i.size_multiple = 4;
  } else if (has("IMDB1.c1.weight") && has("fea_conv.weight")) {
    i.arch = Arch::kIMDN;
    i.nf = dim(sd, "fea_conv.weight", 0);
    i.blocks = count_blocks(sd, "IMDB", ".c1.weight", 1);
  } else {
    std::string some;
    for (auto it = sd.begin(); it != sd.end() && some.size() < 120; ++it)
      some += (some.empty() ? "" : ", ") + it->first;
    throw Error("checkpoint is not one of IMDN, IMDN_AS, IMDN_RTC, IMDN_RTE (its tensors: " + some + ")");
  }
  if (i.nf < 4 || i.nf % 4 || i.blocks < 1)
    throw Error(std::string("checkpoint of ") + arch_name(i.arch) + " has unusable nf or block count");
  // The pixel shuffle's factor r: the last convolution has 3 r^2 outputs.
  const uint32_t outs = dim(sd, up, 0);
  uint32_t r = 1;
  while (r < 8 && 3 * r * r < outs) ++r;
  if (3 * r * r != outs)
    throw Error("checkpoint's last convolution has " + std::to_string(outs) + " outputs, not 3 r^2");
  i.upsample = r;
  const uint32_t b = i.blocks;
  switch (i.arch) {
    case Arch::kIMDN:
      i.scale = r;
      i.receptive_radius = 1 + 4 * b + 1 + 1;
      break;
    case Arch::kIMDN_AS:  // stem at full and half resolution, body at a quarter, x4 shuffle
      if (r != 4) throw Error("checkpoint of IMDN_AS upsamples by " + std::to_string(r) + ", the architecture by 4");
      i.scale = 1;
      i.receptive_radius = 1 + 2 + 4 * (4 * b + 2) + 3;
      break;
    case Arch::kIMDN_RTC:
      i.scale = r;
      i.receptive_radius = 1 + 4 * b + 1;
      break;
    case Arch::kIMDN_RTE:  // stride-2 stem, half-resolution body
      if (r % 2) throw Error("checkpoint of IMDN_RTE upsamples by an odd factor after its stride-2 stem");
      i.scale = r / 2;
      i.receptive_radius = 1 + 1 + 2 * (6 * b + 1) + 1;
      break;
  }
  return i;
}

// A tensor's values as float32, gathered with its strides from its storage's bytes.
std::vector<float> values(const std::string& name, const Value* t, const std::map<std::string, StorageInfo>& storages) {
  const auto& st = storages.at(t->storage->s);
  const int es = element_size(st.dtype);
  if (st.dtype != "Float" && st.dtype != "Half" && st.dtype != "BFloat16" && st.dtype != "Double") {
    throw Error("checkpoint tensor " + name + " is of type " + st.dtype + ", not floating point");
  }
  if (!st.data)
    throw Error("checkpoint tensor " + name + ": its storage " + t->storage->s +
                " is missing from the file (truncated, or a zip entry data/" + t->storage->s + " lost?)");
  uint64_t numel = 1, last = uint64_t(t->offset);
  for (size_t k = 0; k < t->size.size(); ++k) {
    numel *= uint64_t(t->size[k]);
    if (t->size[k] == 0)
      last = 0;
    else
      last += uint64_t(t->size[k] - 1) * uint64_t(t->stride[k]);
  }
  if (numel > 0 && last >= uint64_t(st.numel)) {
    throw Error("checkpoint tensor " + name + " reaches past the end of its storage (" + std::to_string(st.numel) +
                " values)");
  }
  std::vector<float> out(static_cast<size_t>(numel));
  std::vector<int64_t> index(t->size.size(), 0);
  for (size_t e = 0; e < out.size(); ++e) {
    uint64_t at = uint64_t(t->offset);
    for (size_t k = 0; k < index.size(); ++k) at += uint64_t(index[k]) * uint64_t(t->stride[k]);
    const uint8_t* q = st.data + at * uint64_t(es);
    float v;
    if (st.dtype == "Float") {
      std::memcpy(&v, q, 4);
    } else if (st.dtype == "Half") {
      v = from_half(uint16_t(read_le(q, 2)));
    } else if (st.dtype == "BFloat16") {
      const uint32_t bits = uint32_t(read_le(q, 2)) << 16;
      std::memcpy(&v, &bits, 4);
    } else {
      double d;
      std::memcpy(&d, q, 8);
      v = float(d);
    }
    out[e] = v;
    for (size_t k = index.size(); k-- > 0;) {
      if (++index[k] < t->size[k]) break;
      index[k] = 0;
    }
  }
  return out;
}

Checkpoint to_model(const Value* top, const std::map<std::string, StorageInfo>& storages) {
  const Names sd = state_dict(top);
  Checkpoint c;
  c.info = identify(sd);
  std::set<std::string> used;
  for (const auto& [canonical, shape] : Model::expected_tensors(c.info)) {
    const std::string name = pytorch_name(c.info.arch, c.info.blocks, canonical);
    const Value* t = tensor(sd, name);
    if (!t) throw Error(std::string("checkpoint of ") + arch_name(c.info.arch) + " lacks tensor " + name);
    std::vector<uint32_t> got(t->size.begin(), t->size.end());
    if (got != shape || std::vector<int64_t>(shape.begin(), shape.end()) != t->size) {
      std::string a, b;
      for (auto d : t->size) a += (a.empty() ? "" : ", ") + std::to_string(d);
      for (auto d : shape) b += (b.empty() ? "" : ", ") + std::to_string(d);
      throw Error("checkpoint tensor " + name + " has shape (" + a + "); " + arch_name(c.info.arch) + " with nf " +
                  std::to_string(c.info.nf) + " needs (" + b + ")");
    }
    Tensor out;
    out.shape = shape;
    out.data = values(name, t, storages);
    c.tensors.emplace(canonical, std::move(out));
    used.insert(name);
  }
  for (const auto& kv : sd) {
    if (!used.count(kv.first)) {
      throw Error("checkpoint holds tensor " + kv.first + ", which " + arch_name(c.info.arch) + " with " +
                  std::to_string(c.info.blocks) + " blocks does not have");
    }
  }
  return c;
}

Checkpoint read_legacy(const uint8_t* b, size_t n) {
  Unpickler u;
  size_t pos = 0;
  const Value* magic = u.load(b, n, pos, "(legacy format) header");
  static const uint8_t kMagic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  if (magic->kind != Kind::kInt || !magic->big || magic->s != std::string(reinterpret_cast<const char*>(kMagic), 10)) {
    throw Error("not a PyTorch checkpoint: its first pickle is not the legacy format's magic number");
  }
  const Value* protocol = u.load(b, n, pos, "(legacy format) header");
  if (protocol->kind != Kind::kInt || protocol->i != 1001)
    throw Error("checkpoint has an unknown legacy protocol version");
  const Value* sys = u.load(b, n, pos, "(legacy format) system info");
  if (sys->kind == Kind::kDict) {
    const Value* little = find(sys, "little_endian");
    if (little && little->kind == Kind::kBool && !little->i)
      throw Error("checkpoint was saved on a big-endian machine; not supported");
  }
  const Value* top = u.load(b, n, pos, "(legacy format) state dict");
  const Value* keys = u.load(b, n, pos, "(legacy format) storage list");
  if (keys->kind != Kind::kList) throw Error("checkpoint (legacy format) has no storage list");
  for (const Value* k : keys->items) {
    if (k->kind != Kind::kStr)
      throw Error("checkpoint (legacy format) storage list holds " + std::string(kind_name(k->kind)));
    auto it = u.storages.find(k->s);
    if (it == u.storages.end()) throw Error("checkpoint (legacy format) stores " + k->s + ", which no tensor uses");
    if (n - pos < 8) throw Error("checkpoint (legacy format) is truncated before storage " + k->s);
    const int64_t count = int64_t(read_le(b + pos, 8));
    pos += 8;
    if (count < 0 || uint64_t(count) > n)
      throw Error("checkpoint (legacy format): storage " + k->s + " claims " + std::to_string(count) +
                  " values, more than the file holds");
    if (count != it->second.numel) {
      throw Error("checkpoint (legacy format): storage " + k->s + " holds " + std::to_string(count) +
                  " values, its description says " + std::to_string(it->second.numel));
    }
    const uint64_t bytes = uint64_t(count) * uint64_t(element_size(it->second.dtype));
    if (bytes > n - pos) throw Error("checkpoint (legacy format) is truncated inside storage " + k->s);
    it->second.data = b + pos;
    pos += size_t(bytes);
  }
  return to_model(top, u.storages);
}

Checkpoint read_zip_checkpoint(const uint8_t* b, size_t n) {
  const auto entries = read_zip(b, n);
  std::string prefix;
  const ZipEntry* pkl = nullptr;
  for (const auto& [name, e] : entries) {
    if (name == "data.pkl" || (name.size() > 9 && name.compare(name.size() - 9, 9, "/data.pkl") == 0)) {
      if (pkl) throw Error("checkpoint (zip format) holds more than one data.pkl");
      pkl = &e;
      prefix = name.substr(0, name.size() - 8);
    }
  }
  if (!pkl) throw Error("checkpoint (zip format) has no data.pkl: not a PyTorch checkpoint");
  auto order = entries.find(prefix + "byteorder");
  if (order != entries.end() &&
      std::string(reinterpret_cast<const char*>(order->second.data), order->second.size) != "little") {
    throw Error("checkpoint was saved on a big-endian machine; not supported");
  }
  Unpickler u;
  size_t pos = 0;
  const Value* top = u.load(pkl->data, pkl->size, pos, "(zip format) data.pkl");
  for (auto& [key, st] : u.storages) {
    auto it = entries.find(prefix + "data/" + key);
    if (it == entries.end()) continue;  // refused when a tensor needs it, after its shape is checked
    const uint64_t want = uint64_t(st.numel) * uint64_t(element_size(st.dtype));
    if (it->second.size != want) {
      throw Error("checkpoint (zip format): storage " + key + " has " + std::to_string(it->second.size) +
                  " bytes, its description says " + std::to_string(want));
    }
    st.data = it->second.data;
  }
  return to_model(top, u.storages);
}

}  // namespace

bool looks_like_checkpoint(const uint8_t* b, size_t n) {
  return n >= 4 && ((b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4) || b[0] == 0x80);
}

Checkpoint read_checkpoint(const uint8_t* b, size_t n) {
  if (n > Model::kMaxFileSize) throw Error("checkpoint too large: " + std::to_string(n) + " bytes");
  if (n >= 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4) return read_zip_checkpoint(b, n);
  if (n >= 2 && b[0] == 0x80) return read_legacy(b, n);
  throw Error("not a PyTorch checkpoint (neither a zip archive nor a pickle)");
}

}  // namespace imdn
