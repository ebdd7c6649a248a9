#pragma once
/// @file
/// A minimal, safe reader of Python pickles (protocols 0-5, binary opcodes plus the few text ones torch never
/// writes but old files might), made for the `data.pkl` of PyTorch checkpoints. It never executes anything: a
/// GLOBAL resolves only names on a small allowlist (containers, torch's tensor-rebuild functions, storage and dtype
/// names); any other global is a FormatError naming it, unless the caller asks for opaque placeholders (used for
/// TorchScript module objects, whose attribute dictionaries hold the weights).
///
/// The result is a graph of `pickle::Node`s in an arena (indices, not pointers: a hostile pickle may build cycles,
/// which then cost nothing). Tensors are not read here: `_rebuild_tensor_v2` gives a `tensor` node that records the
/// storage (the persistent id: dtype, key, numel), the offset, sizes and strides; the caller checks them against
/// the storage bytes. Memo size, stack depth, node count and container items are capped; every read is bounds
/// checked; errors name the label (file and entry), the byte offset and the opcode.

#include <bit>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "froster/core/error.hpp"
#include "froster/io/state_dict.hpp"

namespace froster::io::pickle {

enum class Kind : std::uint8_t {
  none,
  boolean,
  integer,
  floating,
  string,   ///< Python str (UTF-8 bytes as found in the pickle)
  bytes,
  tuple,
  list,     ///< also sets and frozensets
  dict,     ///< items: key, value, key, value, ... in insertion order (later duplicates win when read)
  global,   ///< an allowlisted (or, with opaque placeholders, any) `module.name`, in `text`
  object,   ///< an instance of a non-allowlisted class: items = {class global, args, state} (state may be none)
  storage,  ///< a torch storage from a persistent id: `text` = key, `text2` = location, `dtype`, `integer` = numel
  tensor,   ///< items = {storage}; `integer` = storage offset; dims = sizes then strides; `flag` = requires_grad
};

inline const char* kind_name(Kind k) {
  switch (k) {
    case Kind::none: return "None";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::floating: return "float";
    case Kind::string: return "str";
    case Kind::bytes: return "bytes";
    case Kind::tuple: return "tuple";
    case Kind::list: return "list";
    case Kind::dict: return "dict";
    case Kind::global: return "global";
    case Kind::object: return "object";
    case Kind::storage: return "storage";
    case Kind::tensor: return "tensor";
  }
  return "?";
}

using NodeId = std::uint32_t;

struct Node {
  Kind kind = Kind::none;
  bool flag = false;                ///< bool value; tensor: requires_grad
  StoredType dtype = StoredType::f32;  ///< storage and tensor element type
  std::int64_t integer = 0;         ///< int value; storage numel; tensor storage offset
  double floating = 0.0;
  std::string text;                 ///< str / bytes / global name / storage key
  std::string text2;                ///< storage location
  std::vector<NodeId> items;        ///< container elements, see Kind
  std::vector<std::int64_t> dims;   ///< tensor sizes followed by strides (rank = dims.size() / 2)

  int rank() const { return static_cast<int>(dims.size() / 2); }
};

/// Caps that keep a hostile pickle from exhausting memory. Real checkpoints stay far below them.
struct Limits {
  std::size_t max_nodes = std::size_t{1} << 22;   ///< values created
  std::size_t max_items = std::size_t{1} << 24;   ///< container elements, all containers together
  std::size_t max_stack = std::size_t{1} << 20;   ///< stack depth and open MARKs
  std::size_t max_memo = std::size_t{1} << 22;    ///< memo entries
  int max_rank = 32;                              ///< tensor dimensions
};

/// What to do with a global outside the allowlist.
enum class UnknownGlobals : std::uint8_t {
  reject,       ///< FormatError naming it (the default: a state dict needs nothing else)
  torchscript,  ///< placeholders for `__torch__.*` classes (TorchScript modules), reject the rest
  opaque,       ///< placeholders for every unknown global (never called: their objects just hold args and state)
};

struct Options {
  Limits limits{};
  UnknownGlobals unknown_globals = UnknownGlobals::reject;
};

/// Byte size of one element of a stored type.
inline std::size_t element_size(StoredType t) {
  switch (t) {
    case StoredType::f64:
    case StoredType::i64: return 8;
    case StoredType::f32:
    case StoredType::i32: return 4;
    case StoredType::f16:
    case StoredType::bf16:
    case StoredType::i16: return 2;
    case StoredType::i8:
    case StoredType::u8:
    case StoredType::boolean: return 1;
  }
  return 1;
}

/// The element type named by a torch storage class (`FloatStorage`) or dtype (`float32`), after `torch.`.
inline bool torch_type_from_name(std::string_view name, StoredType& out) {
  struct Pair {
    std::string_view storage, dtype;
    StoredType type;
  };
  static constexpr Pair table[] = {
      {"FloatStorage", "float32", StoredType::f32},   {"DoubleStorage", "float64", StoredType::f64},
      {"HalfStorage", "float16", StoredType::f16},    {"BFloat16Storage", "bfloat16", StoredType::bf16},
      {"LongStorage", "int64", StoredType::i64},      {"IntStorage", "int32", StoredType::i32},
      {"ShortStorage", "int16", StoredType::i16},     {"CharStorage", "int8", StoredType::i8},
      {"ByteStorage", "uint8", StoredType::u8},       {"BoolStorage", "bool", StoredType::boolean},
      {"UntypedStorage", "", StoredType::u8},
  };
  for (const Pair& p : table) {
    if (name == p.storage || (!p.dtype.empty() && name == p.dtype)) {
      out = p.type;
      return true;
    }
  }
  return false;
}

/// The result of unpickling: the value graph and its root.
class Pickle {
 public:
  const Node& node(NodeId id) const { return nodes_[id]; }
  const Node& root() const { return nodes_[root_]; }
  NodeId root_id() const { return root_; }
  std::size_t size() const { return nodes_.size(); }

  /// For a dict node: the value under the string key `key` (the last one when repeated), or nullptr.
  const Node* get(const Node& dict, std::string_view key) const {
    const Node* found = nullptr;
    if (dict.kind != Kind::dict) return nullptr;
    for (std::size_t i = 0; i + 1 < dict.items.size(); i += 2) {
      const Node& k = nodes_[dict.items[i]];
      if (k.kind == Kind::string && k.text == key) found = &nodes_[dict.items[i + 1]];
    }
    return found;
  }

 private:
  friend class Machine;
  std::vector<Node> nodes_;
  NodeId root_ = 0;
};

/// The unpickler. Use `pickle::load(bytes, label)`.
class Machine {
 public:
  Machine(std::span<const std::byte> bytes, std::string label, Options options)
      : in_(bytes), label_(std::move(label)), opt_(options) {}

  Pickle run() {
    while (true) {
      if (pos_ >= in_.size()) fail_at(pos_, "ends without a STOP opcode (truncated?)");
      op_at_ = pos_;
      op_ = static_cast<std::uint8_t>(in_[pos_++]);
      if (step()) break;
    }
    if (stack_.size() != 1) fail("STOP with ", stack_.size(), " values on the stack; expected exactly one");
    out_.root_ = stack_.back();
    return std::move(out_);
  }

 private:
  // ---- errors --------------------------------------------------------------------------------------------
  template <class... Parts>
  [[noreturn]] void fail_at(std::size_t at, const Parts&... parts) const {
    throw FormatError(froster::detail::concat("pickle '", label_, "' at byte ", at, ": ", parts...));
  }
  template <class... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    fail_at(op_at_, "opcode ", opcode_name(), ": ", parts...);
  }
  std::string opcode_name() const {
    static constexpr char hex[] = "0123456789abcdef";
    std::string s = "0x";
    s += hex[op_ >> 4];
    s += hex[op_ & 15];
    if (op_ >= 0x20 && op_ < 0x7f) (s += " '") += static_cast<char>(op_), s += "'";
    return s;
  }

  // ---- input ---------------------------------------------------------------------------------------------
  std::span<const std::byte> take(std::uint64_t n) {
    if (n > in_.size() - pos_) fail("needs ", n, " bytes of argument, only ", in_.size() - pos_, " remain (truncated?)");
    auto s = in_.subspan(pos_, static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return s;
  }
  template <class U>
  U le() {
    auto s = take(sizeof(U));
    U v = 0;
    for (std::size_t i = 0; i < sizeof(U); ++i) v |= static_cast<U>(static_cast<U>(s[i]) << (8 * i));
    return v;
  }
  std::string_view line() {  // text argument ending with '\n' (protocol 0 forms and GLOBAL)
    for (std::size_t i = pos_; i < in_.size(); ++i) {
      if (in_[i] == std::byte{'\n'}) {
        std::string_view s(reinterpret_cast<const char*>(in_.data() + pos_), i - pos_);
        pos_ = i + 1;
        return s;
      }
    }
    fail("has a text argument without its terminating newline (truncated?)");
  }
  static std::string to_string(std::span<const std::byte> s) {
    return std::string(reinterpret_cast<const char*>(s.data()), s.size());
  }

  // ---- nodes and the stack -------------------------------------------------------------------------------
  NodeId make(Kind k) {
    if (out_.nodes_.size() >= opt_.limits.max_nodes) fail("more than ", opt_.limits.max_nodes, " values (limit)");
    out_.nodes_.emplace_back();
    out_.nodes_.back().kind = k;
    return static_cast<NodeId>(out_.nodes_.size() - 1);
  }
  Node& at(NodeId id) { return out_.nodes_[id]; }
  void count_items(std::size_t n) {
    items_ += n;
    if (items_ > opt_.limits.max_items) fail("more than ", opt_.limits.max_items, " container elements (limit)");
  }
  void push(NodeId id) {
    if (stack_.size() >= opt_.limits.max_stack) fail("stack deeper than ", opt_.limits.max_stack, " (limit)");
    stack_.push_back(id);
  }
  NodeId pop() {
    if (stack_.size() <= floor()) fail("pops from an empty stack");
    NodeId id = stack_.back();
    stack_.pop_back();
    return id;
  }
  NodeId& top() {
    if (stack_.size() <= floor()) fail("needs a value on the stack, found none");
    return stack_.back();
  }
  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  /// Pops the values above the last MARK, and the MARK.
  std::vector<NodeId> pop_mark() {
    if (marks_.empty()) fail("needs a MARK, found none");
    const std::size_t m = marks_.back();
    marks_.pop_back();
    std::vector<NodeId> v(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return v;
  }
  void push_int(std::int64_t v) {
    NodeId id = make(Kind::integer);
    at(id).integer = v;
    push(id);
  }
  void push_text(Kind k, std::string s) {
    NodeId id = make(k);
    at(id).text = std::move(s);
    push(id);
  }
  NodeId make_tuple(std::vector<NodeId> items) {
    count_items(items.size());
    NodeId id = make(Kind::tuple);
    at(id).items = std::move(items);
    return id;
  }
  void memo_put(std::uint64_t key) {
    if (stack_.size() <= floor()) fail("memoizes with an empty stack");
    auto it = memo_.find(key);
    if (it == memo_.end() && memo_.size() >= opt_.limits.max_memo) fail("more than ", opt_.limits.max_memo, " memo entries");
    memo_[key] = stack_.back();
  }
  void memo_get(std::uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail("reads memo entry ", key, ", which was never stored");
    push(it->second);
  }
  std::int64_t parse_int(std::string_view s) {
    if (!s.empty() && s.back() == 'L') s.remove_suffix(1);
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);
    std::int64_t v = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size()) fail("has an integer '", s, "' that is malformed or too large");
    return v;
  }
  std::int64_t little_signed(std::span<const std::byte> b) {
    if (b.empty()) return 0;
    // Wider than 8 bytes is fine only when the extra bytes just extend the sign.
    const bool negative = (static_cast<std::uint8_t>(b.back()) & 0x80) != 0;
    for (std::size_t i = 8; i < b.size(); ++i)
      if (static_cast<std::uint8_t>(b[i]) != (negative ? 0xff : 0x00)) fail("has an integer too large for 64 bits");
    if (b.size() > 8 && ((static_cast<std::uint8_t>(b[7]) & 0x80) != 0) != negative) fail("has an integer too large for 64 bits");
    std::uint64_t v = negative ? ~std::uint64_t{0} : 0;
    for (std::size_t i = 0; i < b.size() && i < 8; ++i) {
      v &= ~(std::uint64_t{0xff} << (8 * i));
      v |= std::uint64_t(static_cast<std::uint8_t>(b[i])) << (8 * i);
    }
    return static_cast<std::int64_t>(v);
  }

  // ---- globals and calls ---------------------------------------------------------------------------------
  static std::string normalize_module(std::string_view module) {
    if (module == "__builtin__") return "builtins";  // protocol 2 pickles written by Python 2
    return std::string(module);
  }
  static bool allowlisted(std::string_view q) {
    static constexpr std::string_view names[] = {
        "collections.OrderedDict", "builtins.dict", "builtins.set", "builtins.frozenset", "builtins.list",
        "builtins.tuple", "_codecs.encode", "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3", "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state", "torch.device", "torch.Size",
        "torch.jit._pickle.restore_type_tag", "torch.jit._pickle.build_intlist",
        "torch.jit._pickle.build_doublelist", "torch.jit._pickle.build_boollist",
        "torch.jit._pickle.build_tensorlist"};
    for (std::string_view n : names)
      if (q == n) return true;
    StoredType t{};
    return q.starts_with("torch.") && torch_type_from_name(q.substr(6), t);
  }
  void push_global(std::string_view module, std::string_view name) {
    if (module.size() + name.size() > 4096) fail("has a global name longer than 4096 bytes");
    std::string q = normalize_module(module);
    q += '.';
    q += name;
    if (!allowlisted(q)) {
      const bool ok = opt_.unknown_globals == UnknownGlobals::opaque ||
                      (opt_.unknown_globals == UnknownGlobals::torchscript && q.starts_with("__torch__."));
      if (!ok)
        fail("global '", q,
             "' is not allowed: this reader loads tensors and plain containers only and never runs code from a "
             "pickle");
    }
    push_text(Kind::global, std::move(q));
  }
  const Node& arg(const std::vector<NodeId>& args, std::size_t i) { return at(args[i]); }
  std::int64_t int_arg(const std::vector<NodeId>& args, std::size_t i, const char* what) {
    const Node& n = arg(args, i);
    if (n.kind == Kind::integer) return n.integer;
    if (n.kind == Kind::boolean) return n.flag ? 1 : 0;
    fail(what, " must be an int, found ", kind_name(n.kind));
  }
  /// Sizes or strides of a tensor: a tuple or list of ints.
  void append_dims(NodeId id, std::vector<std::int64_t>& out, const char* what) {
    const Node& n = at(id);
    if (n.kind != Kind::tuple && n.kind != Kind::list) fail("tensor ", what, " must be a tuple, found ", kind_name(n.kind));
    if (n.items.size() > static_cast<std::size_t>(opt_.limits.max_rank))
      fail("tensor has ", n.items.size(), " ", what, " (more than ", opt_.limits.max_rank, ")");
    for (NodeId e : n.items) {
      const Node& v = at(e);
      if (v.kind != Kind::integer) fail("tensor ", what, " must hold ints, found ", kind_name(v.kind));
      out.push_back(v.integer);
    }
  }
  NodeId rebuild_tensor(const std::vector<NodeId>& args, std::string_view fn) {
    const bool v3 = fn.ends_with("_v3");
    const std::size_t needed = fn.ends_with("_v2") ? 6 : v3 ? 7 : 4;
    if (args.size() < needed) fail(fn, " takes at least ", needed, " arguments, found ", args.size());
    if (arg(args, 0).kind != Kind::storage) fail(fn, ": argument 0 must be a storage (persistent id), found ", kind_name(arg(args, 0).kind));
    NodeId id = make(Kind::tensor);
    Node t;
    t.kind = Kind::tensor;
    t.items = {args[0]};
    t.dtype = arg(args, 0).dtype;
    t.integer = int_arg(args, 1, "storage offset");
    append_dims(args[2], t.dims, "sizes");
    const std::size_t rank = t.dims.size();
    append_dims(args[3], t.dims, "strides");
    if (t.dims.size() != 2 * rank) fail(fn, ": ", rank, " sizes but ", t.dims.size() - rank, " strides");
    if (args.size() > 4) t.flag = arg(args, 4).kind == Kind::boolean && arg(args, 4).flag;
    if (v3) {
      const Node& d = arg(args, 6);
      StoredType st{};
      if (d.kind != Kind::global || !d.text.starts_with("torch.") || !torch_type_from_name(std::string_view(d.text).substr(6), st))
        fail(fn, ": argument 6 must be a torch dtype");
      t.dtype = st;
    }
    count_items(1 + t.dims.size());
    at(id) = std::move(t);
    return id;
  }
  /// REDUCE / NEWOBJ: calls only what the allowlist names, by building the value it would return.
  NodeId call(NodeId callable, NodeId args_id, bool newobj) {
    const Node& c = at(callable);
    if (c.kind != Kind::global) fail("calls a ", kind_name(c.kind), ", not a global");
    const std::string fn = c.text;
    if (at(args_id).kind != Kind::tuple) fail("calls '", fn, "' with a ", kind_name(at(args_id).kind), " instead of an argument tuple");
    const std::vector<NodeId> args = at(args_id).items;  // copy: make() may move the arena
    if (!allowlisted(fn)) {  // a placeholder class (permitted by the options when the global was pushed)
      NodeId id = make(Kind::object);
      NodeId none = make(Kind::none);
      at(id).items = {callable, args_id, none};
      count_items(3);
      return id;
    }
    if (fn == "collections.OrderedDict" || fn == "builtins.dict") {
      NodeId id = make(Kind::dict);
      if (args.empty()) return id;
      const Node& src = at(args[0]);
      if (args.size() == 1 && src.kind == Kind::dict) {
        count_items(src.items.size());
        std::vector<NodeId> copy = src.items;
        at(id).items = std::move(copy);
        return id;
      }
      if (args.size() == 1 && (src.kind == Kind::list || src.kind == Kind::tuple)) {
        std::vector<NodeId> kv;
        for (NodeId p : src.items) {
          const Node& pair = at(p);
          if ((pair.kind != Kind::tuple && pair.kind != Kind::list) || pair.items.size() != 2)
            fail(fn, "() expects (key, value) pairs");
          kv.push_back(pair.items[0]);
          kv.push_back(pair.items[1]);
        }
        count_items(kv.size());
        at(id).items = std::move(kv);
        return id;
      }
      fail(fn, "() with unsupported arguments");
    }
    if (newobj) fail("cannot instantiate '", fn, "' with NEWOBJ");
    if (fn.starts_with("torch._utils._rebuild_tensor")) return rebuild_tensor(args, fn);
    if (fn.starts_with("torch._utils._rebuild_parameter") || fn.starts_with("torch.jit._pickle.")) {
      // Parameters and TorchScript list/type tags wrap a value they return unchanged.
      if (args.empty()) fail(fn, "() needs an argument");
      return args[0];
    }
    if (fn == "builtins.set" || fn == "builtins.frozenset" || fn == "builtins.list" || fn == "builtins.tuple" ||
        fn == "torch.Size") {
      if (args.empty()) return make(Kind::list);
      const Node& src = at(args[0]);
      if (src.kind != Kind::list && src.kind != Kind::tuple) fail(fn, "() of a ", kind_name(src.kind));
      return args[0];  // shared rather than copied: nothing here mutates it afterwards in a way that matters
    }
    if (fn == "_codecs.encode") {  // protocol 2 writes bytes as encode(str, 'latin1')
      if (args.size() != 2 || at(args[0]).kind != Kind::string) fail(fn, "() expects (str, encoding)");
      std::string out;
      const std::string& s = at(args[0]).text;
      for (std::size_t i = 0; i < s.size(); ++i) {  // UTF-8 code points < 256 back to single bytes
        const auto b = static_cast<unsigned char>(s[i]);
        if (b < 0x80) out += static_cast<char>(b);
        else if ((b & 0xE0) == 0xC0 && i + 1 < s.size()) {
          out += static_cast<char>(((b & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F));
          ++i;
        } else fail(fn, "(): not a latin-1 string");
      }
      NodeId id = make(Kind::bytes);
      at(id).text = std::move(out);
      return id;
    }
    if (fn == "torch.device") {
      if (args.empty() || at(args[0]).kind != Kind::string) fail(fn, "() expects a device name");
      std::string name = at(args[0]).text;
      if (args.size() > 1 && at(args[1]).kind == Kind::integer) name += ":" + std::to_string(at(args[1]).integer);
      NodeId id = make(Kind::string);
      at(id).text = std::move(name);
      return id;
    }
    fail("'", fn, "' is not callable");
  }

  /// Persistent id of a torch storage: ('storage', storage type, key, location, numel).
  NodeId persistent(NodeId pid_id) {
    const Node& pid = at(pid_id);
    if (pid.kind != Kind::tuple || pid.items.size() < 5 || at(pid.items[0]).kind != Kind::string ||
        at(pid.items[0]).text != "storage")
      fail("persistent id is not a ('storage', type, key, location, numel) tuple");
    const Node& type = at(pid.items[1]);
    const Node& key = at(pid.items[2]);
    const Node& location = at(pid.items[3]);
    const Node& numel = at(pid.items[4]);
    StoredType st{};
    if (type.kind != Kind::global || !type.text.starts_with("torch.") ||
        !torch_type_from_name(std::string_view(type.text).substr(6), st))
      fail("persistent id names no torch storage type");
    if (key.kind != Kind::string || key.text.empty() || key.text.size() > 256)
      fail("persistent id has no valid storage key");
    if (numel.kind != Kind::integer || numel.integer < 0) fail("persistent id has no valid element count");
    auto cached = storages_.find(key.text);
    if (cached != storages_.end()) return cached->second;  // one storage, many views
    Node s;
    s.kind = Kind::storage;
    s.dtype = st;
    s.text = key.text;
    if (location.kind == Kind::string) s.text2 = location.text;
    s.integer = numel.integer;
    NodeId id = make(Kind::storage);
    storages_.emplace(s.text, id);
    at(id) = std::move(s);
    return id;
  }

  // ---- the opcodes ---------------------------------------------------------------------------------------
  /// Executes the opcode in `op_`; returns true at STOP.
  bool step() {
    switch (op_) {
      case 0x80: {  // PROTO
        const auto v = le<std::uint8_t>();
        if (v > 5) fail("protocol ", int(v), " is newer than 5");
        return false;
      }
      case 0x95: (void)le<std::uint64_t>(); return false;  // FRAME: a hint only
      case '.': return true;                                 // STOP
      case '(':                                              // MARK
        if (marks_.size() >= opt_.limits.max_stack) fail("more than ", opt_.limits.max_stack, " open MARKs");
        marks_.push_back(stack_.size());
        return false;
      case '0': (void)pop(); return false;        // POP
      case '1': (void)pop_mark(); return false;   // POP_MARK
      case '2': push(top()); return false;        // DUP
      case 'N': push(make(Kind::none)); return false;
      case 0x88:
      case 0x89: {  // NEWTRUE, NEWFALSE
        NodeId id = make(Kind::boolean);
        at(id).flag = op_ == 0x88;
        push(id);
        return false;
      }
      case 'J': push_int(static_cast<std::int32_t>(le<std::uint32_t>())); return false;  // BININT
      case 'K': push_int(le<std::uint8_t>()); return false;                              // BININT1
      case 'M': push_int(le<std::uint16_t>()); return false;                             // BININT2
      case 0x8a: push_int(little_signed(take(le<std::uint8_t>()))); return false;        // LONG1
      case 0x8b: {                                                                       // LONG4
        const auto n = static_cast<std::int32_t>(le<std::uint32_t>());
        if (n < 0) fail("negative length");
        push_int(little_signed(take(static_cast<std::uint64_t>(n))));
        return false;
      }
      case 'I': {  // INT (text): also spells bools as 00 / 01
        std::string_view s = line();
        if (s == "00" || s == "01") {
          NodeId id = make(Kind::boolean);
          at(id).flag = s == "01";
          push(id);
        } else {
          push_int(parse_int(s));
        }
        return false;
      }
      case 'L': push_int(parse_int(line())); return false;  // LONG (text)
      case 'G': {                                           // BINFLOAT: big-endian double
        auto s = take(8);
        std::uint64_t bits = 0;
        for (std::size_t i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<std::uint8_t>(s[i]);
        NodeId id = make(Kind::floating);
        at(id).floating = std::bit_cast<double>(bits);
        push(id);
        return false;
      }
      case 'X': push_text(Kind::string, to_string(take(le<std::uint32_t>()))); return false;   // BINUNICODE
      case 0x8c: push_text(Kind::string, to_string(take(le<std::uint8_t>()))); return false;   // SHORT_BINUNICODE
      case 0x8d: push_text(Kind::string, to_string(take(le<std::uint64_t>()))); return false;  // BINUNICODE8
      case 'T': {                                                                              // BINSTRING
        const auto n = static_cast<std::int32_t>(le<std::uint32_t>());
        if (n < 0) fail("negative length");
        push_text(Kind::string, to_string(take(static_cast<std::uint64_t>(n))));
        return false;
      }
      case 'U': push_text(Kind::string, to_string(take(le<std::uint8_t>()))); return false;    // SHORT_BINSTRING
      case 'B': push_text(Kind::bytes, to_string(take(le<std::uint32_t>()))); return false;    // BINBYTES
      case 'C': push_text(Kind::bytes, to_string(take(le<std::uint8_t>()))); return false;     // SHORT_BINBYTES
      case 0x8e:                                                                               // BINBYTES8
      case 0x96: push_text(Kind::bytes, to_string(take(le<std::uint64_t>()))); return false;   // BYTEARRAY8
      case '}': push(make(Kind::dict)); return false;   // EMPTY_DICT
      case ']':                                         // EMPTY_LIST
      case 0x8f: push(make(Kind::list)); return false;  // EMPTY_SET
      case ')': push(make_tuple({})); return false;     // EMPTY_TUPLE
      case 'd': {                                       // DICT
        std::vector<NodeId> v = pop_mark();
        if (v.size() % 2 != 0) fail("has an odd number of keys and values");
        count_items(v.size());
        NodeId id = make(Kind::dict);
        at(id).items = std::move(v);
        push(id);
        return false;
      }
      case 'l':                 // LIST
      case 0x91: {              // FROZENSET
        std::vector<NodeId> v = pop_mark();
        count_items(v.size());
        NodeId id = make(Kind::list);
        at(id).items = std::move(v);
        push(id);
        return false;
      }
      case 't': push(make_tuple(pop_mark())); return false;  // TUPLE
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        const std::size_t n = op_ - 0x84u;
        std::vector<NodeId> v(n);
        for (std::size_t i = n; i-- > 0;) v[i] = pop();
        push(make_tuple(std::move(v)));
        return false;
      }
      case 'a': {  // APPEND
        NodeId v = pop();
        append_to(top(), {v});
        return false;
      }
      case 'e':      // APPENDS
      case 0x90: {   // ADDITEMS
        std::vector<NodeId> v = pop_mark();
        append_to(top(), std::move(v));
        return false;
      }
      case 's': {  // SETITEM
        NodeId v = pop();
        NodeId k = pop();
        set_items(top(), {k, v});
        return false;
      }
      case 'u': {  // SETITEMS
        std::vector<NodeId> v = pop_mark();
        if (v.size() % 2 != 0) fail("has an odd number of keys and values");
        set_items(top(), std::move(v));
        return false;
      }
      case 'q': memo_put(le<std::uint8_t>()); return false;   // BINPUT
      case 'r': memo_put(le<std::uint32_t>()); return false;  // LONG_BINPUT
      case 'p': memo_put(static_cast<std::uint64_t>(parse_int(line()))); return false;  // PUT (text)
      case 0x94: memo_put(memo_.size()); return false;        // MEMOIZE
      case 'h': memo_get(le<std::uint8_t>()); return false;   // BINGET
      case 'j': memo_get(le<std::uint32_t>()); return false;  // LONG_BINGET
      case 'g': memo_get(static_cast<std::uint64_t>(parse_int(line()))); return false;  // GET (text)
      case 'c': {                                             // GLOBAL
        std::string module(line());
        std::string name(line());
        push_global(module, name);
        return false;
      }
      case 0x93: {  // STACK_GLOBAL
        NodeId name = pop();
        NodeId module = pop();
        if (at(module).kind != Kind::string || at(name).kind != Kind::string) fail("needs two strings");
        const std::string m = at(module).text, n = at(name).text;
        push_global(m, n);
        return false;
      }
      case 'R': {  // REDUCE
        NodeId args = pop();
        NodeId fn = pop();
        push(call(fn, args, false));
        return false;
      }
      case 0x81: {  // NEWOBJ
        NodeId args = pop();
        NodeId cls = pop();
        push(call(cls, args, true));
        return false;
      }
      case 0x92: {  // NEWOBJ_EX: keyword arguments are ignored (only placeholders and dicts get here)
        (void)pop();
        NodeId args = pop();
        NodeId cls = pop();
        push(call(cls, args, true));
        return false;
      }
      case 'b': {  // BUILD: objects keep their state; dicts and tensors ignore attributes (state_dict's _metadata)
        NodeId state = pop();
        Node& target = at(top());
        if (target.kind == Kind::object) target.items[2] = state;
        return false;
      }
      case 'Q': {  // BINPERSID
        NodeId pid = pop();
        push(persistent(pid));
        return false;
      }
      default: fail("is not supported (unknown or out-of-band opcode)");
    }
  }
  void append_to(NodeId list_id, std::vector<NodeId> v) {
    Node& list = at(list_id);
    if (list.kind != Kind::list) fail("appends to a ", kind_name(list.kind), ", not a list");
    count_items(v.size());
    list.items.insert(list.items.end(), v.begin(), v.end());
  }
  void set_items(NodeId dict_id, std::vector<NodeId> kv) {
    Node& dict = at(dict_id);
    if (dict.kind != Kind::dict) fail("sets items of a ", kind_name(dict.kind), ", not a dict");
    count_items(kv.size());
    dict.items.insert(dict.items.end(), kv.begin(), kv.end());
  }

  std::span<const std::byte> in_;
  std::string label_;
  Options opt_;
  std::size_t pos_ = 0;
  std::size_t op_at_ = 0;
  std::uint8_t op_ = 0;
  Pickle out_;
  std::vector<NodeId> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, NodeId> memo_;
  std::size_t items_ = 0;
  std::unordered_map<std::string, NodeId> storages_;
};

/// Unpickles `bytes`. `label` names the stream in errors (for example "model.pt:archive/data.pkl").
/// Throws FormatError on malformed or truncated input, disallowed globals, or exceeded limits.
inline Pickle load(std::span<const std::byte> bytes, const std::string& label, const Options& options = {}) {
  return Machine(bytes, label, options).run();
}

}  // namespace froster::io::pickle
