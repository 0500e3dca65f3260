// The pickle interpreter of the checkpoint reader (checkpoint.h): it only builds data (dicts,
// lists, tuples, strings, numbers, tensor descriptions) and resolves only the few names a state
// dict uses, each replaced by a fixed data constructor; any other name refuses the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bytes.h"
#include "model.h"

namespace imdn {
namespace pickle {

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
inline int element_size(const std::string& dtype) {
  static const std::map<std::string, int> sizes = {{"Float", 4}, {"Half", 2}, {"BFloat16", 2}, {"Double", 8},
                                                   {"Long", 8},  {"Int", 4},  {"Short", 2},    {"Char", 1},
                                                   {"Byte", 1},  {"Bool", 1}};
  auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

inline const char* kind_name(Kind k) {
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
    return read_le(q, k);
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

  Value* global(const std::string& module, const std::string& name);

  // BINPERSID: ('storage', torch.<T>Storage, key, location, numel[, view metadata])
  Value* persistent(Value* pid);

  std::vector<int64_t> ints(Value* t, const char* what);

  // REDUCE / NEWOBJ of an allowed name: a fixed data constructor, never the file's code.
  Value* call(Value* f, Value* args);

  Value* run();
};

}  // namespace pickle
}  // namespace imdn
