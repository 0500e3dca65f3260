#include "model.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>

#include "architecture.h"
#include "bytes.h"
#include "half.h"

namespace imdn {

namespace {

constexpr uint8_t kDtypeF32 = 1;
constexpr uint8_t kDtypeF16 = 2;

// Little-endian reads with bounds checks; every failure names the byte offset.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  size_t pos() const { return pos_; }
  void need(size_t k, const char* what) const {
    if (k > n_ - pos_) {
      throw Error("model file is truncated: " + std::string(what) + " at byte " + std::to_string(pos_) + " needs " +
                  std::to_string(k) + " bytes, " + std::to_string(n_ - pos_) + " left");
    }
  }
  uint8_t u8(const char* what) {
    need(1, what);
    return p_[pos_++];
  }
  uint16_t u16(const char* what) {
    need(2, what);
    const uint16_t v = uint16_t(read_le(p_ + pos_, 2));
    pos_ += 2;
    return v;
  }
  uint32_t u32(const char* what) {
    need(4, what);
    const uint32_t v = uint32_t(read_le(p_ + pos_, 4));
    pos_ += 4;
    return v;
  }
  uint64_t u64(const char* what) {
    uint64_t lo = u32(what);
    uint64_t hi = u32(what);
    return lo | hi << 32;
  }
  float f32(const char* what) {
    uint32_t v = u32(what);
    float f;
    std::memcpy(&f, &v, 4);
    return f;
  }
  const uint8_t* bytes(size_t k, const char* what) {
    need(k, what);
    const uint8_t* q = p_ + pos_;
    pos_ += k;
    return q;
  }
  void align4() {
    while (pos_ % 4 != 0 && pos_ < n_) ++pos_;
  }

 private:
  const uint8_t* p_;
  size_t n_, pos_ = 0;
};

}  // namespace

namespace {

std::string shape_str(const std::vector<uint32_t>& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + ")";
}

}  // namespace

namespace {

// The header of an .imdn file of `size` bytes (its size checked), its checksum and what it says
// of the network; *count: the tensors it announces.
ModelInfo read_header(const uint8_t* bytes, size_t size, uint32_t* count) {
  Reader r(bytes, size);
  r.bytes(8, "magic");
  const uint32_t version = r.u32("version");
  if (version != Model::kVersion) {
    throw Error("unsupported model file version " + std::to_string(version) + " (this build reads version " +
                std::to_string(Model::kVersion) + (version > Model::kVersion ? "; update imdn-wasm)" : ")"));
  }
  const uint32_t header_size = r.u32("header size");
  if (header_size != Model::kHeaderSize)
    throw Error("model header size is " + std::to_string(header_size) + ", expected 64");
  ModelInfo info;
  info.arch = Arch(r.u32("architecture"));
  info.nf = r.u32("nf");
  info.blocks = r.u32("blocks");
  info.scale = r.u32("scale");
  info.upsample = r.u32("upsample");
  info.input_range = r.f32("input range");
  info.receptive_radius = r.u32("receptive radius");
  info.size_multiple = r.u32("size multiple");
  *count = r.u32("tensor count");
  r.u32("flags");
  const uint64_t payload = r.u64("payload size");
  if (payload != size - Model::kHeaderSize - 4) {
    throw Error("model file is truncated or has trailing bytes: header says " + std::to_string(payload) +
                " bytes of tensors, file has " + std::to_string(size - Model::kHeaderSize - 4));
  }
  const uint32_t stored_crc = uint32_t(read_le(bytes + size - 4, 4));
  if (crc32(bytes, size - 4) != stored_crc) throw Error("model file is corrupt: checksum mismatch");

  const uint32_t arch_id = uint32_t(info.arch);
  if (arch_id < 1 || arch_id > 4) throw Error("unknown architecture id " + std::to_string(arch_id) + " in model file");
  if (!(std::isfinite(info.input_range) && info.input_range > 0 && info.input_range <= 65535)) {
    throw Error("model header has an invalid input range");
  }
  if (info.receptive_radius > 4096) throw Error("model header has an invalid receptive radius");
  return info;
}

}  // namespace

Model Model::parse(const uint8_t* bytes, size_t size) {
  // (A prefix of the magic is a truncated model file; empty data may come as a null pointer.)
  if (size > 0 && std::memcmp(bytes, kMagic, size < 8 ? size : 8) != 0) {
    throw Error(
        "not a model: neither an .imdn file (wrong magic: expected \"IMDNWASM\") nor a PyTorch checkpoint (.pth)");
  }
  if (size < kHeaderSize + 4) {
    throw Error("not an imdn model file: " + std::to_string(size) + " bytes is shorter than the " +
                std::to_string(kHeaderSize + 4) + "-byte header and checksum");
  }
  if (size > kMaxFileSize) throw Error("model file too large: " + std::to_string(size) + " bytes");
  Model m;
  ModelInfo& info = m.info_;
  uint32_t count = 0;
  info = read_header(bytes, size, &count);
  const Architecture arch = Architecture::of(info);
  const auto expected = arch.tensors();
  if (count != expected.size()) {
    throw Error(std::string("model file has ") + std::to_string(count) + " tensors; " + arch_name(info.arch) +
                " with these hyper-parameters needs " + std::to_string(expected.size()));
  }
  std::map<std::string, std::vector<uint32_t>> want(expected.begin(), expected.end());

  Reader body(bytes, size - 4);
  body.bytes(kHeaderSize, "header");
  for (uint32_t i = 0; i < count; ++i) {
    const uint16_t len = body.u16("tensor name length");
    if (len == 0 || len > 255) throw Error("tensor #" + std::to_string(i) + " has an invalid name length");
    const uint8_t* name_bytes = body.bytes(len, "tensor name");
    std::string name(reinterpret_cast<const char*>(name_bytes), len);
    for (char c : name) {
      if (c < 0x21 || c > 0x7E) throw Error("tensor #" + std::to_string(i) + " has a non-ASCII name");
    }
    const uint8_t dtype = body.u8("dtype");
    const uint8_t ndim = body.u8("ndim");
    if (ndim < 1 || ndim > 4) throw Error("tensor " + name + " has " + std::to_string(ndim) + " dimensions");
    Tensor t;
    uint64_t numel = 1;
    for (uint8_t k = 0; k < ndim; ++k) {
      t.shape.push_back(body.u32("tensor dims"));
      numel *= t.shape.back();
      if (numel > (uint64_t(1) << 28)) throw Error("tensor " + name + " is absurdly large");
    }
    body.align4();
    auto it = want.find(name);
    if (it == want.end()) {
      throw Error(m.tensors_.count(name) ? "tensor " + name + " appears twice"
                                         : "unexpected tensor " + name + " for " + arch_name(info.arch));
    }
    if (it->second != t.shape) {
      throw Error("tensor " + name + " has shape " + shape_str(t.shape) + ", " + arch_name(info.arch) + " needs " +
                  shape_str(it->second));
    }
    // The bytes are checked to be there before anything is allocated for them.
    if (dtype == kDtypeF32) {
      const uint8_t* p = body.bytes(numel * 4, "tensor data");
      t.data.resize(numel);
      std::memcpy(t.data.data(), p, numel * 4);
    } else if (dtype == kDtypeF16) {
      const uint8_t* p = body.bytes(numel * 2, "tensor data");
      t.data.resize(numel);
      for (uint64_t k = 0; k < numel; ++k) t.data[k] = from_half(uint16_t(read_le(p + 2 * k, 2)));
    } else {
      throw Error("tensor " + name + " has unknown dtype " + std::to_string(dtype));
    }
    for (float v : t.data) {
      if (!std::isfinite(v)) throw Error("tensor " + name + " holds NaN or infinity");
    }
    m.tensors_.emplace(name, std::move(t));
    want.erase(it);
  }
  if (body.pos() != size - 4) throw Error("model file has unexplained bytes after the last tensor");
  if (!want.empty()) throw Error("model file lacks tensor " + want.begin()->first);
  return m;
}

const Tensor& Model::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw Error("model has no tensor " + name);
  return it->second;
}

size_t Model::parameter_count() const {
  size_t n = 0;
  for (const auto& kv : tensors_) n += kv.second.numel();
  return n;
}

std::vector<std::pair<std::string, std::vector<uint32_t>>> Model::expected_tensors(const ModelInfo& info) {
  return Architecture::of(info).tensors();
}

std::vector<uint8_t> Model::serialize(const ModelInfo& info, const std::map<std::string, Tensor>& tensors, bool f16) {
  std::vector<uint8_t> out;
  auto put32 = [&](uint32_t v) {
    for (int k = 0; k < 4; ++k) out.push_back(uint8_t(v >> (8 * k)));
  };
  out.insert(out.end(), kMagic, kMagic + 8);
  put32(kVersion);
  put32(kHeaderSize);
  put32(uint32_t(info.arch));
  put32(info.nf);
  put32(info.blocks);
  put32(info.scale);
  put32(info.upsample);
  uint32_t range;
  std::memcpy(&range, &info.input_range, 4);
  put32(range);
  put32(info.receptive_radius);
  put32(info.size_multiple);
  put32(uint32_t(tensors.size()));
  put32(0);
  put32(0);  // payload size, patched below
  put32(0);
  for (const auto& kv : tensors) {
    out.push_back(uint8_t(kv.first.size()));
    out.push_back(uint8_t(kv.first.size() >> 8));
    out.insert(out.end(), kv.first.begin(), kv.first.end());
    // float16 for the weights of the body; the first layer (which sees the raw input, [0, 255]
    // for RTE) and small tensors (biases, the attention's 1x1 layers) stay float32: they are a few percent of the
    // size and most of float16's cost in PSNR.
    const bool half = f16 && kv.first.compare(0, 5, "stem.") != 0 && kv.second.data.size() > 1024;
    out.push_back(half ? kDtypeF16 : kDtypeF32);
    out.push_back(uint8_t(kv.second.shape.size()));
    for (uint32_t d : kv.second.shape) put32(d);
    while (out.size() % 4) out.push_back(0);
    if (half) {
      for (float v : kv.second.data) {
        const uint16_t h = to_half(v);
        out.push_back(uint8_t(h));
        out.push_back(uint8_t(h >> 8));
      }
    } else {
      const uint8_t* p = reinterpret_cast<const uint8_t*>(kv.second.data.data());
      out.insert(out.end(), p, p + 4 * kv.second.data.size());
    }
  }
  const uint64_t payload = out.size() - kHeaderSize;
  for (int k = 0; k < 8; ++k) out[56 + k] = uint8_t(payload >> (8 * k));
  put32(crc32(out.data(), out.size()));
  return out;
}

}  // namespace imdn
