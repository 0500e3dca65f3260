// Checkpoints written the way torch.save writes them (protocol-2 pickles; the legacy stream or a
// stored zip), for the checkpoint tests and the fuzzers' seed corpus: no PyTorch needed.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "bytes.h"
#include "checkpoint.h"
#include "half.h"
#include "model.h"

namespace checkpoint_writer {

struct Pickle {
  std::vector<uint8_t> b;
  Pickle& op(uint8_t c) {
    b.push_back(c);
    return *this;
  }
  Pickle& u(uint64_t v, int k) {
    for (int j = 0; j < k; ++j) b.push_back(uint8_t(v >> (8 * j)));
    return *this;
  }
  Pickle& str(const std::string& s) {
    op('X').u(s.size(), 4);
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Pickle& integer(int64_t v) {
    if (v >= 0 && v < (int64_t(1) << 31)) return op('J').u(uint64_t(v), 4);
    return op(0x8a).u(8, 1).u(uint64_t(v), 8);
  }
  Pickle& global(const std::string& module, const std::string& name) {
    op('c');
    b.insert(b.end(), module.begin(), module.end());
    op('\n');
    b.insert(b.end(), name.begin(), name.end());
    return op('\n');
  }
  Pickle& ordered_dict() { return global("collections", "OrderedDict").op(')').op('R'); }
};

struct Entry {
  std::string name;
  std::vector<uint32_t> shape;
  std::string key;  // storage
  std::string dtype = "Float";
  int64_t numel = -1;  // storage size claimed; -1: the tensor's
};

struct Options {
  bool zip = false;
  bool half = false;
  std::string prefix;        // e.g. "module."
  bool wrapped = false;      // {'state_dict': ...}
  std::string extra_global;  // a GLOBAL to slip in as a value
};

// The state-dict pickle (torch._utils._rebuild_tensor_v2 of persistent storages).
inline std::vector<uint8_t> state_pickle(const std::vector<Entry>& entries, const Options& o) {
  Pickle p;
  p.op(0x80).op(2);
  if (o.wrapped) p.op('}').str("state_dict");
  p.ordered_dict().op('(');
  for (const Entry& e : entries) {
    int64_t numel = 1;
    for (uint32_t d : e.shape) numel *= d;
    p.str(o.prefix + e.name).global("torch._utils", "_rebuild_tensor_v2").op('(');
    p.op('(')
        .str("storage")
        .global("torch", e.dtype + "Storage")
        .str(e.key)
        .str("cpu")
        .integer(e.numel >= 0 ? e.numel : numel)
        .op('t')
        .op('Q');
    p.integer(0).op('(');
    for (uint32_t d : e.shape) p.integer(d);
    p.op('t').op('(');
    int64_t stride = 1;
    std::vector<int64_t> strides(e.shape.size());
    for (size_t k = e.shape.size(); k-- > 0;) {
      strides[k] = stride;
      stride *= e.shape[k];
    }
    for (int64_t s : strides) p.integer(s);
    p.op('t').op(0x89).ordered_dict().op('t').op('R');
  }
  if (!o.extra_global.empty()) {
    const size_t dot = o.extra_global.rfind('.');
    p.str("hook")
        .global(o.extra_global.substr(0, dot), o.extra_global.substr(dot + 1))
        .op('(')
        .str("echo pwned")
        .op('t')
        .op('R');
  }
  p.op('u');
  if (o.wrapped) p.op('s');
  p.op('.');
  return p.b;
}

inline void put_values(std::vector<uint8_t>* out, const std::vector<float>& v, bool half) {
  for (float x : v) {
    if (half) {
      const uint16_t h = imdn::to_half(x);
      out->push_back(uint8_t(h));
      out->push_back(uint8_t(h >> 8));
    } else {
      uint8_t q[4];
      std::memcpy(q, &x, 4);
      out->insert(out->end(), q, q + 4);
    }
  }
}

inline std::vector<uint8_t> zip(const std::vector<std::pair<std::string, std::vector<uint8_t>>>& files) {
  std::vector<uint8_t> out, cd;
  auto u = [](std::vector<uint8_t>& b, uint64_t v, int k) {
    for (int j = 0; j < k; ++j) b.push_back(uint8_t(v >> (8 * j)));
  };
  for (const auto& [name, data] : files) {
    const uint32_t crc = imdn::crc32(data.data(), data.size());
    const size_t at = out.size();
    u(out, 0x04034b50, 4);
    u(out, 20, 2);
    u(out, 0, 2);
    u(out, 0, 2);
    u(out, 0, 4);
    u(out, crc, 4);
    u(out, data.size(), 4);
    u(out, data.size(), 4);
    u(out, name.size(), 2);
    u(out, 0, 2);
    out.insert(out.end(), name.begin(), name.end());
    out.insert(out.end(), data.begin(), data.end());
    u(cd, 0x02014b50, 4);
    u(cd, 20, 2);
    u(cd, 20, 2);
    u(cd, 0, 2);
    u(cd, 0, 2);
    u(cd, 0, 4);
    u(cd, crc, 4);
    u(cd, data.size(), 4);
    u(cd, data.size(), 4);
    u(cd, name.size(), 2);
    u(cd, 0, 2);
    u(cd, 0, 2);
    u(cd, 0, 2);
    u(cd, 0, 2);
    u(cd, 0, 4);
    u(cd, at, 4);
    cd.insert(cd.end(), name.begin(), name.end());
  }
  const size_t cd_at = out.size();
  out.insert(out.end(), cd.begin(), cd.end());
  u(out, 0x06054b50, 4);
  u(out, 0, 2);
  u(out, 0, 2);
  u(out, files.size(), 2);
  u(out, files.size(), 2);
  u(out, cd.size(), 4);
  u(out, cd_at, 4);
  u(out, 0, 2);
  return out;
}

// A checkpoint of `model` in the authors' names, as torch.save writes it.
inline std::vector<uint8_t> checkpoint(const imdn::Model& model, const Options& o = {}) {
  const imdn::ModelInfo& info = model.info();
  std::vector<Entry> entries;
  std::vector<std::pair<std::string, std::vector<uint8_t>>> storages;
  for (const auto& [name, shape] : imdn::Model::expected_tensors(info)) {
    Entry e{imdn::pytorch_name(info.arch, info.blocks, name), shape, std::to_string(94000 + entries.size()),
            o.half ? "Half" : "Float"};
    std::vector<uint8_t> data;
    put_values(&data, model.tensor(name).data, o.half);
    storages.push_back({e.key, data});
    entries.push_back(e);
  }
  const std::vector<uint8_t> state = state_pickle(entries, o);
  if (o.zip) {
    std::vector<std::pair<std::string, std::vector<uint8_t>>> files = {{"archive/data.pkl", state}};
    for (auto& [key, data] : storages) files.push_back({"archive/data/" + key, data});
    files.push_back({"archive/version", {'3', '\n'}});
    return zip(files);
  }
  Pickle head;
  static const uint8_t magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  head.op(0x80).op(2).op(0x8a).u(10, 1);
  head.b.insert(head.b.end(), magic, magic + 10);
  head.op('.');
  head.op(0x80).op(2).op('M').u(1001, 2).op('.');
  head.op(0x80)
      .op(2)
      .op('}')
      .op('(')
      .str("protocol_version")
      .integer(1001)
      .str("little_endian")
      .op(0x88)
      .op('u')
      .op('.');
  std::vector<uint8_t> out = head.b;
  out.insert(out.end(), state.begin(), state.end());
  Pickle keys;
  keys.op(0x80).op(2).op(']').op('(');
  for (auto& kv : storages) keys.str(kv.first);
  keys.op('e').op('.');
  out.insert(out.end(), keys.b.begin(), keys.b.end());
  for (auto& [key, data] : storages) {
    const uint64_t n = data.size() / (o.half ? 2 : 4);
    for (int j = 0; j < 8; ++j) out.push_back(uint8_t(n >> (8 * j)));
    out.insert(out.end(), data.begin(), data.end());
  }
  return out;
}

}  // namespace checkpoint_writer
