// PyTorch checkpoint reader: see checkpoint.h.
#include "checkpoint.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <set>
#include <utility>
#include <vector>

namespace imdn {

namespace {

// ---------------------------------------------------------------------------------------------
// Pickle data (no objects: only what a state dict is made of)

enum class Kind { kNone, kBool, kInt, kFloat, kStr, kTuple, kList, kDict, kGlobal, kStorage, kTensor };

struct Value {
  Kind kind = Kind::kNone;
  int64_t i = 0;                      // kInt, kBool; kStorage: numel
  bool big = false;                   // kInt: did not fit in 64 bits (raw bytes in s)
  double f = 0;                       // kFloat
  std::string s;                      // kStr; kGlobal: "module.name"; kStorage: key; big kInt: bytes
  std::vector<Value*> items;          // kTuple, kList; kDict: key, value, key, value, ...
  std::string dtype;                  // kStorage: "Float", "Half", ...
  Value* storage = nullptr;           // kTensor
  int64_t offset = 0;                 // kTensor
  std::vector<int64_t> size, stride;  // kTensor
};

constexpr size_t kMaxValues = size_t(1) << 20;  // a state dict of 300 tensors makes ~10K

// Element sizes of the storage types a state dict may hold; only floating ones can be weights.
int element_size(const std::string& dtype) {
  static const std::map<std::string, int> sizes = {{"Float", 4}, {"Half", 2}, {"BFloat16", 2}, {"Double", 8},
                                                   {"Long", 8},  {"Int", 4},  {"Short", 2},    {"Char", 1},
                                                   {"Byte", 1},  {"Bool", 1}};
  auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kNone: return "None";
    case Kind::kBool: return "a bool";
    case Kind::kInt: return "an int";
    case Kind::kFloat: return "a float";
    case Kind::kStr: return "a string";
    case Kind::kTuple: return "a tuple";
    case Kind::kList: return "a list";
    case Kind::kDict: return "a dict";
    case Kind::kGlobal: return "a name";
    case Kind::kStorage: return "a storage";
    case Kind::kTensor: return "a tensor";
  }
  return "?";
}

struct StorageInfo {
  std::string dtype;
  int64_t numel = 0;
  const uint8_t* data = nullptr;  // set once the bytes are found
};

// The interpreter: one instance reads every pickle of a file (the legacy format has five) and
// owns every value they make.
class Unpickler {
 public:
  std::map<std::string, StorageInfo> storages;  // key -> type and size, from the persistent ids

  // Runs one pickle starting at bytes[pos]; returns its value and moves pos past its STOP.
  Value* load(const uint8_t* bytes, size_t size, size_t& pos, const std::string& what) {
    p_ = bytes;
    n_ = size;
    at_ = pos;
    what_ = what;
    stack_.clear();
    marks_.clear();
    memo_.clear();
    Value* v = run();
    pos = at_;
    return v;
  }

 private:
  const uint8_t* p_ = nullptr;
  size_t n_ = 0, at_ = 0;
  std::string what_;
  std::vector<std::unique_ptr<Value>> arena_;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, Value*> memo_;

  [[noreturn]] void fail(const std::string& why) const {
    throw Error("checkpoint " + what_ + " is corrupt at byte " + std::to_string(at_) + ": " + why);
  }
  const uint8_t* take(uint64_t k) {
    if (k > n_ - at_) fail("it ends inside a value (truncated?)");
    const uint8_t* q = p_ + at_;
    at_ += size_t(k);
    return q;
  }
  uint64_t uint(int k) {
    const uint8_t* q = take(uint64_t(k));
    uint64_t v = 0;
    for (int j = k - 1; j >= 0; --j) v = v << 8 | q[j];
    return v;
  }
  std::string line() {
    const size_t start = at_;
    while (at_ < n_ && p_[at_] != '\n') {
      if (at_ - start > 256) fail("a name is too long");
      ++at_;
    }
    if (at_ >= n_) fail("it ends inside a name (truncated?)");
    return std::string(reinterpret_cast<const char*>(p_ + start), at_++ - start);
  }
  Value* make(Kind k) {
    if (arena_.size() >= kMaxValues) fail("too many values for a state dict");
    arena_.push_back(std::make_unique<Value>());
    arena_.back()->kind = k;
    return arena_.back().get();
  }
  Value* integer(int64_t v) {
    Value* x = make(Kind::kInt);
    x->i = v;
    return x;
  }
  Value* string(const uint8_t* q, size_t k) {
    Value* x = make(Kind::kStr);
    x->s.assign(reinterpret_cast<const char*>(q), k);
    return x;
  }
  void push(Value* v) { stack_.push_back(v); }
  Value* pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("the pickle's stack underflows");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value* top() {
    if (stack_.empty()) fail("the pickle's stack is empty");
    return stack_.back();
  }
  std::vector<Value*> pop_mark() {
    if (marks_.empty()) fail("a mark is missing");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Value*> out(stack_.begin() + long(m), stack_.end());
    stack_.resize(m);
    return out;
  }
  Value* tuple(std::vector<Value*> items) {
    Value* t = make(Kind::kTuple);
    t->items = std::move(items);
    return t;
  }

  Value* global(const std::string& module, const std::string& name) {
    const std::string full = module + "." + name;
    static const std::set<std::string> allowed = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                                  "torch._utils._rebuild_tensor", "torch._utils._rebuild_parameter"};
    bool ok = allowed.count(full) > 0;
    if (module == "torch" && name.size() > 7 && name.compare(name.size() - 7, 7, "Storage") == 0) {
      ok = element_size(name.substr(0, name.size() - 7)) > 0;
    }
    if (!ok) {
      throw Error("checkpoint " + what_ + " names " + full +
                  ", which a state dict never does; refusing it (nothing in the file is run)");
    }
    Value* g = make(Kind::kGlobal);
    g->s = full;
    return g;
  }

  // BINPERSID: ('storage', torch.<T>Storage, key, location, numel[, view metadata])
  Value* persistent(Value* pid) {
    if (pid->kind != Kind::kTuple || pid->items.size() < 5 || pid->items[0]->kind != Kind::kStr ||
        pid->items[0]->s != "storage") {
      fail("a persistent id is not a storage reference");
    }
    Value* type = pid->items[1];
    Value* key = pid->items[2];
    Value* numel = pid->items[4];
    if (type->kind != Kind::kGlobal || type->s.compare(0, 6, "torch.") != 0) fail("a storage has no storage type");
    if (key->kind != Kind::kStr || key->s.empty() || key->s.size() > 64) fail("a storage has no valid key");
    if (numel->kind != Kind::kInt || numel->big || numel->i < 0) fail("a storage has no valid size");
    if (numel->i > int64_t(n_) + (int64_t(1) << 32))
      fail("a storage claims " + std::to_string(numel->i) + " values, far more than any file holds");
    if (pid->items.size() > 5 && pid->items[5]->kind != Kind::kNone) {
      throw Error("checkpoint " + what_ +
                  " holds a storage view, which state dicts saved by torch.save do not; not supported");
    }
    const std::string dtype = type->s.substr(6, type->s.size() - 6 - 7);
    auto [it, fresh] = storages.try_emplace(key->s, StorageInfo{dtype, numel->i, nullptr});
    if (!fresh && (it->second.dtype != dtype || it->second.numel != numel->i)) {
      throw Error("checkpoint " + what_ + ": storage " + key->s + " is described twice with different types or sizes");
    }
    Value* s = make(Kind::kStorage);
    s->s = key->s;
    s->dtype = dtype;
    s->i = numel->i;
    return s;
  }

  std::vector<int64_t> ints(Value* t, const char* what) {
    if (t->kind != Kind::kTuple || t->items.size() > 8)
      fail(std::string("a tensor's ") + what + " is not a short tuple");
    std::vector<int64_t> out;
    for (Value* v : t->items) {
      if (v->kind != Kind::kInt || v->big || v->i < 0 || v->i > (int64_t(1) << 40))
        fail(std::string("a tensor's ") + what + " is not a size");
      out.push_back(v->i);
    }
    return out;
  }

  // REDUCE / NEWOBJ of an allowed name: a fixed data constructor, never the file's code.
  Value* call(Value* f, Value* args) {
    if (f->kind != Kind::kGlobal) fail(std::string("it calls ") + kind_name(f->kind));
    if (args->kind != Kind::kTuple) fail("a call's arguments are not a tuple");
    const auto& a = args->items;
    if (f->s == "collections.OrderedDict") {
      Value* d = make(Kind::kDict);
      if (a.size() == 1 && (a[0]->kind == Kind::kList || a[0]->kind == Kind::kTuple)) {
        for (Value* pair : a[0]->items) {
          if (pair->kind != Kind::kTuple || pair->items.size() != 2)
            fail("OrderedDict() of something that is not pairs");
          d->items.push_back(pair->items[0]);
          d->items.push_back(pair->items[1]);
        }
      } else if (!a.empty()) {
        fail("OrderedDict() with unexpected arguments");
      }
      return d;
    }
    if (f->s == "torch._utils._rebuild_tensor_v2" || f->s == "torch._utils._rebuild_tensor") {
      if (a.size() < 4 || a[0]->kind != Kind::kStorage || a[1]->kind != Kind::kInt || a[1]->big || a[1]->i < 0) {
        fail("a tensor is rebuilt from something that is not (storage, offset, size, stride)");
      }
      Value* t = make(Kind::kTensor);
      t->storage = a[0];
      t->offset = a[1]->i;
      t->size = ints(a[2], "size");
      t->stride = ints(a[3], "stride");
      if (t->size.size() != t->stride.size()) fail("a tensor's size and stride differ in length");
      return t;
    }
    if (f->s == "torch._utils._rebuild_parameter") {
      if (a.empty() || a[0]->kind != Kind::kTensor) fail("a parameter is rebuilt from something that is not a tensor");
      return a[0];
    }
    fail("it calls " + f->s);  // storage types are only named, never called
  }

  Value* run() {
    for (;;) {
      const uint8_t op = *take(1);
      switch (op) {
        case 0x80: {  // PROTO
          const uint8_t v = *take(1);
          if (v < 2 || v > 5) fail("unsupported pickle protocol " + std::to_string(v));
          break;
        }
        case 0x95: take(8); break;  // FRAME: the frame's bytes follow inline
        case '.': {                 // STOP
          Value* v = pop();
          if (!stack_.empty() || !marks_.empty()) fail("values are left on the pickle's stack");
          return v;
        }
        case '(': marks_.push_back(stack_.size()); break;  // MARK
        case '0': pop(); break;                            // POP
        case '1': pop_mark(); break;                       // POP_MARK
        case '2': push(top()); break;                      // DUP
        case 'N': push(make(Kind::kNone)); break;
        case 0x88:
        case 0x89: {  // NEWTRUE, NEWFALSE
          Value* b = make(Kind::kBool);
          b->i = op == 0x88;
          push(b);
          break;
        }
        case 'J': push(integer(int32_t(uint32_t(uint(4))))); break;  // BININT
        case 'K': push(integer(int64_t(uint(1)))); break;            // BININT1
        case 'M': push(integer(int64_t(uint(2)))); break;            // BININT2
        case 0x8a:
        case 0x8b: {  // LONG1, LONG4: little-endian two's complement
          const uint64_t k = op == 0x8a ? uint(1) : uint(4);
          if (k > 64) fail("an integer is too long");
          const uint8_t* q = take(k);
          Value* x = make(Kind::kInt);
          if (k <= 8) {
            uint64_t v = 0;
            for (uint64_t j = k; j-- > 0;) v = v << 8 | q[j];
            if (k > 0 && k < 8 && (q[k - 1] & 0x80)) v |= ~uint64_t(0) << (8 * k);
            x->i = int64_t(v);
          } else {
            x->big = true;
            x->s.assign(reinterpret_cast<const char*>(q), size_t(k));
          }
          push(x);
          break;
        }
        case 'G': {  // BINFLOAT, big-endian
          uint64_t bits = 0;
          const uint8_t* q = take(8);
          for (int j = 0; j < 8; ++j) bits = bits << 8 | q[j];
          Value* x = make(Kind::kFloat);
          std::memcpy(&x->f, &bits, 8);
          push(x);
          break;
        }
        case 'X':    // BINUNICODE
        case 'B': {  // BINBYTES
          const uint64_t k = uint(4);
          push(string(take(k), size_t(k)));
          break;
        }
        case 0x8c:   // SHORT_BINUNICODE
        case 'C':    // SHORT_BINBYTES
        case 'U': {  // SHORT_BINSTRING
          const uint64_t k = uint(1);
          push(string(take(k), size_t(k)));
          break;
        }
        case 'T': {  // BINSTRING
          const uint64_t k = uint(4);
          push(string(take(k), size_t(k)));
          break;
        }
        case 0x8d:
        case 0x8e: {  // BINUNICODE8, BINBYTES8
          const uint64_t k = uint(8);
          push(string(take(k), size_t(k)));
          break;
        }
        case ')': push(tuple({})); break;  // EMPTY_TUPLE
        case 0x85: {                       // TUPLE1
          Value* a = pop();
          push(tuple({a}));
          break;
        }
        case 0x86: {  // TUPLE2
          Value* b = pop();
          Value* a = pop();
          push(tuple({a, b}));
          break;
        }
        case 0x87: {  // TUPLE3
          Value* c = pop();
          Value* b = pop();
          Value* a = pop();
          push(tuple({a, b, c}));
          break;
        }
        case 't': push(tuple(pop_mark())); break;  // TUPLE
        case ']': push(make(Kind::kList)); break;  // EMPTY_LIST
        case 'l': {                                // LIST
          Value* l = make(Kind::kList);
          l->items = pop_mark();
          push(l);
          break;
        }
        case '}': push(make(Kind::kDict)); break;  // EMPTY_DICT
        case 'd': {                                // DICT
          Value* d = make(Kind::kDict);
          d->items = pop_mark();
          if (d->items.size() % 2) fail("a dict has a key without a value");
          push(d);
          break;
        }
        case 'a': {  // APPEND
          Value* v = pop();
          Value* l = top();
          if (l->kind != Kind::kList) fail(std::string("it appends to ") + kind_name(l->kind));
          l->items.push_back(v);
          break;
        }
        case 'e': {  // APPENDS
          std::vector<Value*> vs = pop_mark();
          Value* l = top();
          if (l->kind != Kind::kList) fail(std::string("it appends to ") + kind_name(l->kind));
          l->items.insert(l->items.end(), vs.begin(), vs.end());
          break;
        }
        case 's': {  // SETITEM
          Value* v = pop();
          Value* k = pop();
          Value* d = top();
          if (d->kind != Kind::kDict) fail(std::string("it sets an item of ") + kind_name(d->kind));
          d->items.push_back(k);
          d->items.push_back(v);
          break;
        }
        case 'u': {  // SETITEMS
          std::vector<Value*> kv = pop_mark();
          if (kv.size() % 2) fail("a dict has a key without a value");
          Value* d = top();
          if (d->kind != Kind::kDict) fail(std::string("it sets items of ") + kind_name(d->kind));
          d->items.insert(d->items.end(), kv.begin(), kv.end());
          break;
        }
        case 'q': memo_[uint(1)] = top(); break;  // BINPUT
        case 'r': memo_[uint(4)] = top(); break;  // LONG_BINPUT
        case 0x94: {                              // MEMOIZE
          const uint64_t k = memo_.size();
          memo_[k] = top();
          break;
        }
        case 'h':
        case 'j': {  // BINGET, LONG_BINGET
          auto it = memo_.find(op == 'h' ? uint(1) : uint(4));
          if (it == memo_.end()) fail("it refers to a value it never stored");
          push(it->second);
          break;
        }
        case 'c': {  // GLOBAL
          const std::string module = line();
          const std::string name = line();
          push(global(module, name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          Value* name = pop();
          Value* module = pop();
          if (module->kind != Kind::kStr || name->kind != Kind::kStr) fail("a name is not a string");
          push(global(module->s, name->s));
          break;
        }
        case 'Q': push(persistent(pop())); break;  // BINPERSID
        case 'R': {                                // REDUCE
          Value* args = pop();
          Value* f = pop();
          push(call(f, args));
          break;
        }
        case 0x81: {  // NEWOBJ
          Value* args = pop();
          Value* cls = pop();
          push(call(cls, args));
          break;
        }
        case 'b': {  // BUILD: state for an object; data has none to set, so it is dropped
          pop();
          const Kind k = top()->kind;
          if (k != Kind::kDict && k != Kind::kTensor) fail(std::string("it builds ") + kind_name(k));
          break;
        }
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          fail(std::string("pickle opcode ") + hex + " is not one a state dict uses");
        }
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Zip archives as torch.save writes them (entries stored, not compressed)

struct ZipEntry {
  const uint8_t* data;
  size_t size;
};

uint64_t le(const uint8_t* p, int k) {
  uint64_t v = 0;
  for (int j = k - 1; j >= 0; --j) v = v << 8 | p[j];
  return v;
}

std::map<std::string, ZipEntry> read_zip(const uint8_t* b, size_t n) {
  auto bad = [](const std::string& why) { return Error("checkpoint (zip format) is corrupt: " + why); };
  if (n < 22) throw bad("too short for a zip archive");
  // The end of central directory record: in the last 64 KiB + 22 bytes.
  size_t eocd = n;
  for (size_t i = n - 22 + 1; i-- > 0 && n - i <= 65535 + 22;) {
    if (le(b + i, 4) == 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd == n) throw bad("no end of central directory (truncated?)");
  uint64_t count = le(b + eocd + 10, 2);
  uint64_t cd_size = le(b + eocd + 12, 4);
  uint64_t cd_at = le(b + eocd + 16, 4);
  if (cd_at == 0xFFFFFFFF || count == 0xFFFF) {  // zip64: the locator sits just before
    if (eocd < 20 || le(b + eocd - 20, 4) != 0x07064b50) throw bad("zip64 locator missing");
    const uint64_t z = le(b + eocd - 20 + 8, 8);
    if (z > n - 56 || le(b + z, 4) != 0x06064b50) throw bad("zip64 end of central directory missing");
    count = le(b + z + 32, 8);
    cd_size = le(b + z + 40, 8);
    cd_at = le(b + z + 48, 8);
  }
  if (cd_at > n || cd_size > n - cd_at) throw bad("central directory outside the file (truncated?)");
  if (count > cd_size / 46) throw bad("more entries than the central directory holds");
  std::map<std::string, ZipEntry> out;
  size_t p = size_t(cd_at);
  const size_t end = size_t(cd_at + cd_size);
  for (uint64_t e = 0; e < count; ++e) {
    if (end - p < 46 || le(b + p, 4) != 0x02014b50)
      throw bad("central directory entry " + std::to_string(e) + " is damaged");
    const uint64_t method = le(b + p + 10, 2);
    const uint64_t crc = le(b + p + 16, 4);
    uint64_t csize = le(b + p + 20, 4);
    uint64_t usize = le(b + p + 24, 4);
    const uint64_t name_len = le(b + p + 28, 2), extra_len = le(b + p + 30, 2), comment_len = le(b + p + 32, 2);
    uint64_t local = le(b + p + 42, 4);
    if (46 + name_len + extra_len + comment_len > end - p)
      throw bad("central directory entry " + std::to_string(e) + " is damaged");
    const std::string name(reinterpret_cast<const char*>(b + p + 46), size_t(name_len));
    // zip64 sizes and offset in the extra field, for the fields set to 0xFFFFFFFF
    for (size_t x = p + 46 + name_len, xe = x + extra_len; x + 4 <= xe;) {
      const uint64_t id = le(b + x, 2), len = le(b + x + 2, 2);
      if (x + 4 + len > xe) break;
      if (id == 1) {
        size_t q = x + 4;
        auto next = [&](uint64_t& field) {
          if (field == 0xFFFFFFFF && q + 8 <= x + 4 + len) {
            field = le(b + q, 8);
            q += 8;
          }
        };
        next(usize);
        next(csize);
        next(local);
      }
      x += 4 + len;
    }
    p += size_t(46 + name_len + extra_len + comment_len);
    if (local > n - 30 || le(b + local, 4) != 0x04034b50) throw bad("the local header of " + name + " is missing");
    const uint64_t data_at = local + 30 + le(b + local + 26, 2) + le(b + local + 28, 2);
    if (method != 0) {
      throw Error("checkpoint (zip format): entry " + name +
                  " is compressed; torch.save stores entries uncompressed (was the file re-zipped?)");
    }
    if (csize != usize || data_at > n || usize > n - data_at)
      throw bad("entry " + name + " reaches past the end of the file (truncated?)");
    if (crc32(b + data_at, size_t(usize)) != uint32_t(crc)) throw bad("entry " + name + " fails its checksum");
    out[name] = ZipEntry{b + data_at, size_t(usize)};
  }
  return out;
}

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
      v = half_to_float(uint16_t(q[0] | q[1] << 8));
    } else if (st.dtype == "BFloat16") {
      const uint32_t bits = uint32_t(q[0] | q[1] << 8) << 16;
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
    const int64_t count = int64_t(le(b + pos, 8));
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
