#include "pickle.h"

#include <cstdio>
#include <cstring>
#include <set>
#include <utility>

#include "bytes.h"

namespace imdn {
namespace pickle {

Value* Unpickler::global(const std::string& module, const std::string& name) {
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

Value* Unpickler::persistent(Value* pid) {
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

std::vector<int64_t> Unpickler::ints(Value* t, const char* what) {
  if (t->kind != Kind::kTuple || t->items.size() > 8) fail(std::string("a tensor's ") + what + " is not a short tuple");
  std::vector<int64_t> out;
  for (Value* v : t->items) {
    if (v->kind != Kind::kInt || v->big || v->i < 0 || v->i > (int64_t(1) << 40))
      fail(std::string("a tensor's ") + what + " is not a size");
    out.push_back(v->i);
  }
  return out;
}

Value* Unpickler::call(Value* f, Value* args) {
  if (f->kind != Kind::kGlobal) fail(std::string("it calls ") + kind_name(f->kind));
  if (args->kind != Kind::kTuple) fail("a call's arguments are not a tuple");
  const auto& a = args->items;
  if (f->s == "collections.OrderedDict") {
    Value* d = make(Kind::kDict);
    if (a.size() == 1 && (a[0]->kind == Kind::kList || a[0]->kind == Kind::kTuple)) {
      for (Value* pair : a[0]->items) {
        if (pair->kind != Kind::kTuple || pair->items.size() != 2) fail("OrderedDict() of something that is not pairs");
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

Value* Unpickler::run() {
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
          uint64_t v = read_le(q, int(k));
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
        const uint64_t bits = read_be(take(8), 8);
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

}  // namespace pickle
}  // namespace imdn
