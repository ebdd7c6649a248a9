// PyTorch checkpoint loading (torch.save zip archives, TorchScript archives): values against what PyTorch holds
// (tests/reference/make_torch_checkpoint_fixtures.py), the ZIP reader and the restricted unpickler on hand-made
// and hostile input, truncation and corruption of every fixture, and replay of the pickle fuzz corpus.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "froster/io/pickle.hpp"
#include "froster/io/torch_checkpoint.hpp"
#include "froster/io/zip.hpp"
#include "support/fixtures.hpp"

namespace {

using froster::FormatError;
using froster::io::StoredType;
using froster::io::TorchCheckpoint;
using froster::io::TorchLoadOptions;
using Bytes = std::vector<std::byte>;

std::string data_path(const std::string& file) { return froster::test::fixture_path(file); }

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Bytes out(chars.size());
  if (!chars.empty()) std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

/// The bytes of a string literal, embedded NULs included.
template <std::size_t N>
Bytes bytes_of(const char (&s)[N]) {
  Bytes out(N - 1);
  std::memcpy(out.data(), s, N - 1);
  return out;
}
template <std::size_t N>
std::string str(const char (&s)[N]) {
  return std::string(s, N - 1);
}

const froster::test::Fixture& expected() {
  static const froster::test::Fixture fixture(data_path("torch_expected.fxt"));
  return fixture;
}

/// Every tensor of `got` equals (bit for bit: all conversions to fp32 are exact or round like torch's .float())
/// the expected entry "<stem>/<name>", and the expected entries are exactly the loaded ones.
void require_matches(const froster::io::StateDict& got, const std::string& stem) {
  const auto names = expected().names_with_prefix(stem + "/");
  REQUIRE(got.size() == names.size());
  for (const auto& entry : got) {
    INFO("tensor " << entry.name);
    const std::string key = stem + "/" + entry.name;
    REQUIRE(expected().has(key));
    const auto want = expected().f32(key);
    const froster::Tensor<float>& t = entry.tensor;
    if (t.rank() == 0) {  // 0-d tensors are stored with extents [1] in the fixture format
      REQUIRE(want.extents() == froster::Dims{1});
      CHECK(t.data()[0] == want.data()[0]);
      continue;
    }
    REQUIRE(t.extents() == want.extents());
    for (froster::index_t i = 0; i < t.numel(); ++i) {
      INFO("element " << i);
      REQUIRE(t.data()[i] == want.data()[i]);
    }
  }
}

/// Loads from memory and maps every error to a category, so hostile-input loops can check "FormatError or
/// success, nothing else".
enum class Outcome { ok, format_error, other_error };
Outcome try_load(const Bytes& bytes, const TorchLoadOptions& options = {}) {
  try {
    (void)froster::io::read_torch_checkpoint(std::span<const std::byte>(bytes), "mem.pt", options);
    return Outcome::ok;
  } catch (const FormatError&) {
    return Outcome::format_error;
  } catch (...) {
    return Outcome::other_error;
  }
}

/// What the fuzz harness does with one input (tests/fuzz/fuzz_pickle.cpp): unpickle it with each global policy,
/// load it as the data.pkl of a torch.save-like and of a TorchScript-like archive, and as an archive itself.
void exercise_pickle(std::span<const std::byte> input) {
  using namespace froster::io;
  for (auto policy : {pickle::UnknownGlobals::reject, pickle::UnknownGlobals::opaque}) {
    pickle::Options o;
    o.unknown_globals = policy;
    try {
      (void)pickle::load(input, "fuzz", o);
    } catch (const FormatError&) {
    }
  }
  std::vector<std::byte> storage(64);
  for (std::size_t i = 0; i < storage.size(); ++i) storage[i] = static_cast<std::byte>(i * 37 + 11);
  const std::span<const std::byte> s(storage);
  const auto zip = write_stored_zip({{"a/data.pkl", input}, {"a/data/0", s}, {"a/data/1", s.first(2)},
                                     {"a/data/2", s.first(16)}, {"a/data/3", s.first(0)}});
  try {
    (void)read_torch_checkpoint(std::span<const std::byte>(zip), "fuzz.pt");
  } catch (const FormatError&) {
  }
  const auto jit = write_stored_zip({{"a/data.pkl", input}, {"a/constants.pkl", s.first(0)}, {"a/data/0", s},
                                     {"a/data/1", s.first(2)}});
  try {
    (void)read_torch_checkpoint(std::span<const std::byte>(jit), "fuzz_jit.pt");
  } catch (const FormatError&) {
  }
  if (input.size() >= 2 && input[0] == std::byte{'P'} && input[1] == std::byte{'K'}) {
    try {
      (void)read_torch_checkpoint(input, "fuzz_zip.pt");
    } catch (const FormatError&) {
    }
  }
}

}  // namespace

TEST_CASE("torch checkpoint: plain state dict of every dtype, views and shared storages", "[io][torch_checkpoint]") {
  const TorchCheckpoint ck = froster::io::read_torch_checkpoint(data_path("torch_plain.pt"));
  require_matches(ck.state_dict, "torch_plain");
  CHECK_FALSE(ck.torchscript);
  CHECK(ck.source_key.empty());
  CHECK(ck.stripped_prefix.empty());
  REQUIRE(ck.skipped == std::vector<std::string>{"step (int)"});
  // File order is kept; the stored types are reported; a 0-d tensor stays 0-d.
  CHECK(ck.state_dict.names().front() == "f32");
  CHECK(ck.state_dict.entry("f16").stored == StoredType::f16);
  CHECK(ck.state_dict.entry("bf16").stored == StoredType::bf16);
  CHECK(ck.state_dict.entry("f64").stored == StoredType::f64);
  CHECK(ck.state_dict.entry("i64").stored == StoredType::i64);
  CHECK(ck.state_dict.entry("bool").stored == StoredType::boolean);
  CHECK(ck.state_dict.at("scalar").rank() == 0);
  CHECK(ck.state_dict.at("empty").extents() == froster::Dims{0, 3});
}

TEST_CASE("torch checkpoint: protocol 4 pickle gives the same tensors", "[io][torch_checkpoint]") {
  const auto sd = froster::io::load_torch_checkpoint(data_path("torch_protocol4.pt"));
  require_matches(sd, "torch_plain");
}

TEST_CASE("torch checkpoint: a module's state_dict() (OrderedDict with _metadata)", "[io][torch_checkpoint]") {
  const auto sd = froster::io::load_torch_checkpoint(data_path("torch_ordered.pt"));
  require_matches(sd, "torch_ordered");
  CHECK(sd.names() == std::vector<std::string>{"scale", "position_ids", "proj.weight", "proj.bias", "norm.weight",
                                               "norm.bias"});
}

TEST_CASE("torch checkpoint: nested training checkpoint, key detection and prefix stripping",
          "[io][torch_checkpoint]") {
  const std::string path = data_path("torch_nested.pt");
  const TorchCheckpoint ck = froster::io::read_torch_checkpoint(path);
  CHECK(ck.source_key == "model_state");
  CHECK(ck.stripped_prefix == "module.model.");
  require_matches(ck.state_dict, "torch_nested");

  TorchLoadOptions keep;
  keep.strip_prefixes.clear();
  const auto raw = froster::io::load_torch_checkpoint(path, keep);
  CHECK(raw.contains("module.model.proj.weight"));

  TorchLoadOptions only_module;
  only_module.strip_prefixes = {"module."};
  CHECK(froster::io::load_torch_checkpoint(path, only_module).contains("model.proj.weight"));

  TorchLoadOptions named;
  named.state_dict_key = "model_state";
  CHECK(froster::io::load_torch_checkpoint(path, named).size() == ck.state_dict.size());

  TorchLoadOptions missing;
  missing.state_dict_key = "ema_state";
  CHECK_THROWS_WITH(froster::io::load_torch_checkpoint(path, missing),
                    Catch::Contains("ema_state") && Catch::Contains("model_state") && Catch::Contains(path));
}

TEST_CASE("torch checkpoint: TorchScript archive attributes give state_dict names", "[io][torch_checkpoint]") {
  const TorchCheckpoint ck = froster::io::read_torch_checkpoint(data_path("torch_jit.pt"));
  CHECK(ck.torchscript);
  require_matches(ck.state_dict, "torch_jit");
}

TEST_CASE("torch checkpoint: errors name the file and the tensor", "[io][torch_checkpoint]") {
  const std::string inexact = data_path("torch_int_inexact.pt");
  CHECK_THROWS_WITH(froster::io::load_torch_checkpoint(inexact),
                    Catch::Contains(inexact) && Catch::Contains("'big'") && Catch::Contains("16777217"));
  CHECK_THROWS_AS(froster::io::load_torch_checkpoint(data_path("torch_legacy.pt")), FormatError);
  CHECK_THROWS_WITH(froster::io::load_torch_checkpoint(data_path("torch_legacy.pt")),
                    Catch::Contains("legacy") && Catch::Contains("torch.save(torch.load("));
  CHECK_THROWS_AS(froster::io::load_torch_checkpoint(data_path("does_not_exist.pt")), froster::IoError);
  CHECK_THROWS_WITH(froster::io::load_torch_checkpoint(data_path("torch_expected.fxt")),
                    Catch::Contains("not a PyTorch checkpoint"));
}

TEST_CASE("torch checkpoint: every truncation is a FormatError", "[io][torch_checkpoint]") {
  for (const char* file : {"torch_plain.pt", "torch_nested.pt", "torch_jit.pt"}) {
    const Bytes full = read_file(data_path(file));
    REQUIRE(try_load(full) == Outcome::ok);
    for (std::size_t n = 0; n < full.size(); ++n) {
      INFO(file << " truncated to " << n << " bytes");
      const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
      REQUIRE(try_load(cut) == Outcome::format_error);
    }
  }
}

TEST_CASE("torch checkpoint: corrupted bytes give a FormatError or a load, never anything else",
          "[io][torch_checkpoint]") {
  const Bytes full = read_file(data_path("torch_plain.pt"));
  TorchLoadOptions unchecked;
  unchecked.verify_checksums = false;  // let corrupted pickles reach the unpickler instead of failing the CRC
  std::size_t errors = 0;
  for (std::size_t at = 0; at < full.size(); ++at) {
    for (std::uint8_t x : {std::uint8_t{0x01}, std::uint8_t{0x80}, std::uint8_t{0xff}}) {
      Bytes bad = full;
      bad[at] ^= std::byte{x};
      INFO("byte " << at << " xor " << int(x));
      const Outcome checked = try_load(bad);
      REQUIRE(checked != Outcome::other_error);
      const Outcome loose = try_load(bad, unchecked);
      REQUIRE(loose != Outcome::other_error);
      errors += checked == Outcome::format_error;
    }
  }
  CHECK(errors > full.size());  // most flips are detected (CRC, signatures, pickle structure)

  // A flipped bit in tensor data is caught by the CRC, naming the entry.
  const froster::io::ZipArchive zip(std::span<const std::byte>(full), "plain");
  const froster::io::ZipEntry& e = zip.at("torch_plain/data/0");
  Bytes bad = full;
  bad[static_cast<std::size_t>(e.data.data() - std::span<const std::byte>(full).data())] ^= std::byte{1};
  CHECK_THROWS_WITH(froster::io::read_torch_checkpoint(std::span<const std::byte>(bad), "bad.pt"),
                    Catch::Contains("torch_plain/data/0") && Catch::Contains("CRC"));
}

TEST_CASE("zip reader: stored and ZIP64 archives, and what it refuses", "[io][torch_checkpoint][zip]") {
  const Bytes a = bytes_of("hello"), b = bytes_of("");
  for (bool zip64 : {false, true}) {
    const Bytes z = froster::io::write_stored_zip({{"x/a", a}, {"x/empty", b}}, zip64);
    const froster::io::ZipArchive zip(std::span<const std::byte>(z), "t.zip");
    REQUIRE(zip.size() == 2);
    const auto& e = zip.at("x/a");
    CHECK(std::string(reinterpret_cast<const char*>(e.data.data()), e.data.size()) == "hello");
    CHECK(zip.at("x/empty").data.empty());
    zip.verify_crc(e);
    CHECK(zip.find("x/b") == nullptr);
    CHECK_THROWS_WITH(zip.at("x/b"), Catch::Contains("t.zip") && Catch::Contains("x/b"));
    for (std::size_t n = 0; n < z.size(); ++n) {
      const Bytes cut(z.begin(), z.begin() + static_cast<std::ptrdiff_t>(n));
      CHECK_THROWS_AS(froster::io::ZipArchive(std::span<const std::byte>(cut), "cut.zip"), FormatError);
    }
  }
  // A trailing archive comment is allowed.
  Bytes commented = froster::io::write_stored_zip({{"x/a", a}});
  commented[commented.size() - 2] = std::byte{3};
  for (char c : std::string("abc")) commented.push_back(static_cast<std::byte>(c));
  CHECK(froster::io::ZipArchive(std::span<const std::byte>(commented), "c.zip").size() == 1);

  // Compressed entries (method 8, deflate) are listed but refused by name when read.
  Bytes deflated = froster::io::write_stored_zip({{"x/packed", a}});
  const std::size_t cd = deflated.size() - 22 - (46 + 8);
  REQUIRE(deflated[cd] == std::byte{0x50});
  deflated[cd + 10] = std::byte{8};
  const froster::io::ZipArchive with_deflated(std::span<const std::byte>(deflated), "d.zip");
  REQUIRE(with_deflated.find("x/packed") != nullptr);
  CHECK(with_deflated.find("x/packed")->method == 8);
  CHECK_THROWS_WITH(with_deflated.at("x/packed"), Catch::Contains("x/packed") && Catch::Contains("compressed") &&
                                                      Catch::Contains("d.zip"));

  // Two entries with one name.
  const Bytes twice = froster::io::write_stored_zip({{"x/a", a}, {"x/a", a}});
  CHECK_THROWS_WITH(froster::io::ZipArchive(std::span<const std::byte>(twice), "2.zip"), Catch::Contains("two entries"));

  // A central directory entry pointing past the end of the file.
  Bytes far = froster::io::write_stored_zip({{"x/a", a}});
  const std::size_t cd1 = far.size() - 22 - (46 + 3);
  far[cd1 + 42 + 3] = std::byte{0x7f};  // local header offset's high byte
  CHECK_THROWS_WITH(froster::io::ZipArchive(std::span<const std::byte>(far), "f.zip"),
                    Catch::Contains("outside the file"));

  CHECK_THROWS_WITH(froster::io::ZipArchive(std::span<const std::byte>(a), "tiny.zip"), Catch::Contains("too short"));
}

TEST_CASE("pickle: disallowed globals are named and never resolved", "[io][torch_checkpoint][pickle]") {
  using froster::io::pickle::load;
  const Bytes evil = bytes_of("\x80\x02" "cos\nsystem\n" "X\x02\x00\x00\x00ls" "\x85R.");
  CHECK_THROWS_WITH(load(evil, "evil.pkl"), Catch::Contains("os.system") && Catch::Contains("not allowed") &&
                                                Catch::Contains("evil.pkl"));
  const Bytes stack_global = bytes_of("\x80\x04\x8c\x08" "builtins" "\x8c\x04" "eval" "\x93.");
  CHECK_THROWS_WITH(load(stack_global, "s.pkl"), Catch::Contains("builtins.eval"));

  // In a checkpoint, the message adds how to re-save; with placeholders allowed, an object outside the state dict
  // is ignored (it is only recorded, never constructed).
  const Bytes pkl = bytes_of("\x80\x02}(X\x04\x00\x00\x00" "args" "c__main__\nNamespace\n)\x81" "X\x01\x00\x00\x00w"
                             "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
                             "X\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x02tQK\x00K\x02\x85K\x01\x85\x89)tRu.");
  const float values[2] = {1.5f, -2.0f};
  const auto zip = froster::io::write_stored_zip(
      {{"a/data.pkl", pkl}, {"a/data/0", std::as_bytes(std::span<const float>(values))}});
  CHECK_THROWS_WITH(froster::io::read_torch_checkpoint(std::span<const std::byte>(zip), "ns.pt"),
                    Catch::Contains("__main__.Namespace") && Catch::Contains("state_dict"));
  TorchLoadOptions lenient;
  lenient.allow_unknown_globals = true;
  const auto ck = froster::io::read_torch_checkpoint(std::span<const std::byte>(zip), "ns.pt", lenient);
  REQUIRE(ck.state_dict.size() == 1);
  CHECK(ck.state_dict.at("w").data()[1] == -2.0f);
  CHECK(ck.skipped == std::vector<std::string>{"args (object)"});
}

TEST_CASE("pickle: hostile streams fail cleanly", "[io][torch_checkpoint][pickle]") {
  using froster::io::pickle::load;
  // A list that contains itself: the arena of indices makes the cycle harmless.
  const auto cyclic = load(bytes_of("]q\x00h\x00" "a."), "cycle");
  CHECK(cyclic.root().items.size() == 1);
  CHECK_THROWS_WITH(load(bytes_of("K\x01"), "nostop"), Catch::Contains("STOP"));
  CHECK_THROWS_WITH(load(bytes_of("h\x05."), "memo"), Catch::Contains("memo"));
  CHECK_THROWS_WITH(load(bytes_of("0."), "pop"), Catch::Contains("empty stack"));
  CHECK_THROWS_WITH(load(bytes_of("X\xff\xff\xff\xff" "ab."), "len"), Catch::Contains("remain"));
  CHECK_THROWS_WITH(load(bytes_of("\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01."), "big"),
                    Catch::Contains("64 bits"));
  CHECK(load(bytes_of("\x8a\x09\xff\xff\xff\xff\xff\xff\xff\xff\xff."), "m1").root().integer == -1);
  CHECK_THROWS_WITH(load(bytes_of("\x96\x00."), "oob"), Catch::Contains("0x96"));  // truncated BYTEARRAY8
  CHECK_THROWS_WITH(load(bytes_of("\x97."), "buf"), Catch::Contains("not supported"));  // NEXT_BUFFER

  froster::io::pickle::Options small;
  small.limits.max_nodes = 8;
  CHECK_THROWS_WITH(load(bytes_of("(KKKKKKKKKKKKKKKKKKKK" "l."), "many", small), Catch::Contains("limit"));
  small = {};
  small.limits.max_stack = 4;
  CHECK_THROWS_WITH(load(bytes_of("((((((((((."), "marks", small), Catch::Contains("MARK"));

  // Every truncation of every seed pickle is a FormatError.
  for (const auto& entry : std::filesystem::directory_iterator(data_path("../../fuzz/corpus/pickle"))) {
    const Bytes full = read_file(entry.path().string());
    if (entry.path().filename().string().rfind("seed_", 0) != 0) continue;
    froster::io::pickle::Options any;  // the TorchScript seed holds __torch__ classes
    any.unknown_globals = froster::io::pickle::UnknownGlobals::opaque;
    REQUIRE_NOTHROW(load(full, "seed", any));
    for (std::size_t n = 0; n < full.size(); ++n) {
      const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
      INFO(entry.path() << " cut to " << n);
      REQUIRE_THROWS_AS(load(cut, "cut", any), FormatError);
    }
  }
}

TEST_CASE("torch checkpoint: hostile TorchScript module graphs", "[io][torch_checkpoint][pickle]") {
  const Bytes empty;
  // A module object whose attributes x and y are the module itself.
  const Bytes cyclic = bytes_of("\x80\x02" "c__torch__\nM\n)\x81q\x00}(X\x01\x00\x00\x00" "xh\x00X\x01\x00\x00\x00" "yh\x00ub.");
  const auto zip = froster::io::write_stored_zip({{"a/data.pkl", cyclic}, {"a/constants.pkl", empty}});
  CHECK_THROWS_WITH(froster::io::read_torch_checkpoint(std::span<const std::byte>(zip), "cyc.pt"),
                    Catch::Contains("cyc.pt") && Catch::Contains("TorchScript"));
  // Without constants.pkl it is not TorchScript, and __torch__ classes are refused.
  const auto plain = froster::io::write_stored_zip({{"a/data.pkl", cyclic}});
  CHECK_THROWS_WITH(froster::io::read_torch_checkpoint(std::span<const std::byte>(plain), "p.pt"),
                    Catch::Contains("__torch__.M"));
}

TEST_CASE("pickle: hostile tensor sizes, strides and offsets are refused by name", "[io][torch_checkpoint][pickle]") {
  // _rebuild_tensor_v2(storage '0' of 4 floats, offset, sizes, strides) for the tensor 'w'.
  auto archive = [](const std::string& offset_sizes_strides) {
    const std::string pkl = str("\x80\x02}X\x01\x00\x00\x00w") +
                            str("ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
                                "X\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x04tQ") +
                            offset_sizes_strides + "\x89)tRs.";
    static const float values[4] = {1, 2, 3, 4};
    return froster::io::write_stored_zip(
        {{"a/data.pkl", std::as_bytes(std::span<const char>(pkl.data(), pkl.size()))},
         {"a/data/0", std::as_bytes(std::span<const float>(values))}});
  };
  const auto ok = archive(str("K\x01") + "K\x03\x85" "K\x01\x85");  // offset 1, sizes (3,), strides (1,)
  const auto sd = froster::io::read_torch_checkpoint(std::span<const std::byte>(ok), "ok.pt").state_dict;
  CHECK(sd.at("w").data()[0] == 2.0f);
  CHECK(sd.at("w").data()[2] == 4.0f);
  const auto past = archive(str("K\x02") + "K\x03\x85" "K\x01\x85");  // offset 2: reads element 4
  CHECK_THROWS_WITH(froster::io::read_torch_checkpoint(std::span<const std::byte>(past), "p.pt"),
                    Catch::Contains("'w'") && Catch::Contains("addresses element 4"));
  const auto wide = archive(str("K\x00K\x02\x85" "K\x03\x85"));  // stride 3 reaches element 3: fine
  CHECK(froster::io::read_torch_checkpoint(std::span<const std::byte>(wide), "w.pt").state_dict.at("w").data()[1] ==
        4.0f);
  const auto overflow = archive(str("K\x00\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40K\x02\x86"
                                    "\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40K\x01\x86"));
  CHECK_THROWS_WITH(froster::io::read_torch_checkpoint(std::span<const std::byte>(overflow), "o.pt"),
                    Catch::Contains("'w'"));
  const auto broadcast = archive(str("K\x00J\x00\x00\x00\x10J\x00\x00\x00\x10\x86" "K\x00K\x00\x86"));
  CHECK_THROWS_WITH(froster::io::read_torch_checkpoint(std::span<const std::byte>(broadcast), "b.pt"),
                    Catch::Contains("expanded view"));
  const auto rank7 = archive(str("K\x00(K\x01K\x01K\x01K\x01K\x01K\x01K\x01t(K\x01K\x01K\x01K\x01K\x01K\x01K\x01t"));
  CHECK_THROWS(froster::io::read_torch_checkpoint(std::span<const std::byte>(rank7), "r.pt"));
}

TEST_CASE("pickle fuzz corpus replays without crashing", "[io][torch_checkpoint][fuzz]") {
  const std::string dir = std::string(FROSTER_TEST_DATA_DIR) + "/../../fuzz/corpus/pickle";
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const Bytes input = read_file(entry.path().string());
    INFO(entry.path());
    exercise_pickle(std::span<const std::byte>(input));
    ++files;
  }
  CHECK(files >= 5);
}
