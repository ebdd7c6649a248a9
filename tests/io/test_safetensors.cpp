// safetensors reading and writing (froster/io/safetensors.hpp) and the fp16/bf16 conversions (io/float16.hpp).
// Expected values come from the Python `safetensors` package and torch (tests/reference/
// make_safetensors_fixtures.py): values of every dtype, the exact bytes Python writes (F32, and F16/BF16 after
// torch's rounding), plus closed-form checks of the conversions and hostile files built here, each of which must
// raise froster::FormatError with a message that names the problem.

#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <froster/io/float16.hpp>
#include <froster/io/safetensors.hpp>

#include "support/matchers.hpp"

namespace {

namespace fs = std::filesystem;
using froster::io::SaveType;
using froster::test::MessageContains;
using froster::io::StateDict;

std::string data_path(const std::string& file) { return std::string(FROSTER_TEST_DATA_DIR) + "/" + file; }

std::vector<std::byte> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  const std::string s{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::vector<std::byte> out(s.size());
  if (!s.empty()) std::memcpy(out.data(), s.data(), s.size());
  return out;
}

/// A file from a header text and a data region (the length field is the header's size unless given).
std::vector<std::byte> make_file(const std::string& header, std::size_t data_bytes = 0,
                                 std::optional<std::uint64_t> length = std::nullopt) {
  const std::uint64_t n = length.value_or(header.size());
  std::vector<std::byte> out(8 + header.size() + data_bytes, std::byte{0});
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

/// Same, with explicit data bytes.
std::vector<std::byte> make_file(const std::string& header, const std::vector<std::uint8_t>& data) {
  std::vector<std::byte> out = make_file(header, data.size());
  std::memcpy(out.data() + 8 + header.size(), data.data(), data.size());
  return out;
}

froster::io::SafetensorsFile parse(const std::vector<std::byte>& bytes, const froster::io::SafetensorsOptions& o = {}) {
  return froster::io::parse_safetensors(std::span<const std::byte>(bytes), "hostile.safetensors", o);
}

/// The parse must throw FormatError whose message names the file and contains every fragment.
void expect_format_error(const std::vector<std::byte>& bytes, std::initializer_list<const char*> fragments,
                         const froster::io::SafetensorsOptions& o = {}) {
  try {
    (void)parse(bytes, o);
    FAIL("no FormatError; expected one mentioning " << *fragments.begin());
  } catch (const froster::FormatError& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(what.find("hostile.safetensors") != std::string::npos);
    for (const char* f : fragments) CHECK(what.find(f) != std::string::npos);
  }
}

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }

/// A unique path in the temporary directory, removed (with its ".tmp" sibling) on scope exit.
struct TempPath {
  std::string path;
  explicit TempPath(const std::string& stem)
      : path((fs::temp_directory_path() / (stem + "_" + std::to_string(::getpid()) + ".safetensors")).string()) {}
  ~TempPath() {
    std::error_code ec;
    fs::remove(path, ec);
    fs::remove(path + ".tmp", ec);
  }
};

froster::Tensor<float> tensor(froster::Dims extents, std::initializer_list<float> values) {
  auto t = froster::Tensor<float>::host(extents);
  std::size_t i = 0;
  for (float v : values) t.data()[i++] = v;
  return t;
}

}  // namespace

TEST_CASE("safetensors: every dtype loads as torch converts it to float32", "[io][safetensors]") {
  const auto file = froster::io::load_safetensors(data_path("safetensors_mixed.safetensors"));
  std::ifstream in(data_path("safetensors_mixed_expected.json"));
  REQUIRE(in.good());
  const nlohmann::json expected = nlohmann::json::parse(in);

  CHECK(file.metadata == expected["metadata"].get<std::map<std::string, std::string>>());
  const auto& tensors = expected["tensors"];
  REQUIRE(file.tensors.size() == tensors.size());
  std::vector<std::string> order;
  for (const auto& t : tensors) order.push_back(t["name"].get<std::string>());
  CHECK(file.tensors.names() == order);  // data-offset order
  for (const auto& t : tensors) {
    const std::string name = t["name"].get<std::string>();
    INFO(name);
    const auto& entry = file.tensors.entry(name);
    CHECK(froster::io::stored_type_name(entry.stored) == t["dtype"].get<std::string>());
    const auto shape = t["shape"].get<std::vector<froster::index_t>>();
    REQUIRE(entry.tensor.rank() == static_cast<int>(shape.size()));
    for (int d = 0; d < entry.tensor.rank(); ++d) CHECK(entry.tensor.extent(d) == shape[static_cast<std::size_t>(d)]);
    const auto want = t["bits"].get<std::vector<std::uint32_t>>();
    // A 0-d tensor holds one value (Tensor::numel() reports 0 for rank 0, so count from the extents).
    REQUIRE(static_cast<std::size_t>(entry.tensor.extents().product()) == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      const float got = entry.tensor.data()[i];
      if (std::isnan(std::bit_cast<float>(want[i])))
        CHECK(std::isnan(got));  // torch's NaN bit patterns are its own; any NaN is right
      else
        CHECK(bits(got) == want[i]);
    }
  }
}

TEST_CASE("safetensors: the F32 writer reproduces the bytes Python writes", "[io][safetensors]") {
  const std::string source = data_path("safetensors_f32.safetensors");
  const auto python_bytes = read_bytes(source);
  const auto file = froster::io::load_safetensors(source);
  CHECK(file.tensors.contains("caf\u00e9.\u6743\u91cd"));
  CHECK(file.tensors.contains("tab\tnew\nline\x01" "ctl"));
  CHECK(file.metadata.at("format") == "pt \u2713");
  CHECK(froster::io::serialize_safetensors(file.tensors, file.metadata) == python_bytes);

  const TempPath out("froster_test_st_f32");
  froster::io::save_safetensors(out.path, file.tensors, file.metadata);
  CHECK(read_bytes(out.path) == python_bytes);
  CHECK_FALSE(fs::exists(out.path + ".tmp"));
}

TEST_CASE("safetensors: the F16 and BF16 writers round as torch does", "[io][safetensors]") {
  const auto src = froster::io::load_safetensors(data_path("safetensors_f16_src.safetensors"));
  CHECK(froster::io::serialize_safetensors(src.tensors, src.metadata, SaveType::f16) ==
        read_bytes(data_path("safetensors_f16_ref.safetensors")));
  CHECK(froster::io::serialize_safetensors(src.tensors, src.metadata, SaveType::bf16) ==
        read_bytes(data_path("safetensors_bf16_ref.safetensors")));

  // Through a file too, with the stored type recorded on the way back.
  const TempPath out("froster_test_st_f16");
  froster::io::save_safetensors(out.path, src.tensors, src.metadata, SaveType::f16);
  const auto back = froster::io::load_safetensors(out.path);
  for (const auto& e : back.tensors) CHECK(e.stored == froster::io::StoredType::f16);
  CHECK(read_bytes(out.path) == read_bytes(data_path("safetensors_f16_ref.safetensors")));
}

TEST_CASE("safetensors: save then load is bitwise identical for F32", "[io][safetensors]") {
  StateDict dict;
  dict.insert("z.last", tensor({2, 3}, {1.0f, -0.0f, std::numeric_limits<float>::denorm_min(),
                                        std::numeric_limits<float>::infinity(), std::bit_cast<float>(0x7fc01234u),
                                        std::numeric_limits<float>::max()}));
  dict.insert("a.first", tensor({1, 1, 1, 1, 1, 2}, {3.0f, -7.5f}));
  dict.insert("scalar", tensor({}, {0.125f}));
  dict.insert("empty", froster::Tensor<float>::host({0, 5}));
  const std::map<std::string, std::string> metadata{{"format", "pt"}, {"epoch", "3"}, {"note", "\"quoted\"\n"}};

  const TempPath out("froster_test_st_roundtrip");
  froster::io::save_safetensors(out.path, dict, metadata);
  const auto back = froster::io::load_safetensors(out.path);
  CHECK(back.metadata == metadata);
  CHECK(back.tensors.names() == std::vector<std::string>{"a.first", "empty", "scalar", "z.last"});  // by name
  for (const auto& e : dict) {
    INFO(e.name);
    const auto& got = back.tensors.entry(e.name);
    CHECK(got.stored == froster::io::StoredType::f32);
    REQUIRE(got.tensor.extents() == e.tensor.extents());
    const auto n = static_cast<std::size_t>(e.tensor.extents().product());
    CHECK(std::memcmp(got.tensor.data(), e.tensor.data(), n * sizeof(float)) == 0);
  }
  // Saving what was loaded gives the same bytes again.
  CHECK(froster::io::serialize_safetensors(back.tensors, back.metadata) == read_bytes(out.path));
  // The header is padded with spaces to a multiple of 8, as the reference pads it.
  const auto bytes = read_bytes(out.path);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
}

TEST_CASE("safetensors: saving refuses what it cannot write, and leaves no file", "[io][safetensors]") {
  const TempPath out("froster_test_st_refuse");
  {
    StateDict dict;
    dict.insert("big", tensor({2}, {1.0f, 70000.0f}));
    CHECK_THROWS_MATCHES(froster::io::save_safetensors(out.path, dict, {}, SaveType::f16), froster::ValueError,
                         MessageContains({"'big'", "F16"}));
    CHECK_FALSE(fs::exists(out.path));
    CHECK_FALSE(fs::exists(out.path + ".tmp"));
    CHECK_NOTHROW(froster::io::save_safetensors(out.path, dict, {}, SaveType::bf16));  // in bfloat16's range
  }
  {
    StateDict dict;
    dict.insert("huge", tensor({1}, {std::numeric_limits<float>::max()}));
    CHECK_THROWS_AS(froster::io::serialize_safetensors(dict, {}, SaveType::bf16), froster::ValueError);
  }
  {
    StateDict dict;
    dict.insert("__metadata__", tensor({1}, {1.0f}));
    CHECK_THROWS_AS(froster::io::serialize_safetensors(dict), froster::ValueError);
  }
  {
    StateDict dict;
    dict.insert("bad\xff utf8", tensor({1}, {1.0f}));
    CHECK_THROWS_MATCHES(froster::io::serialize_safetensors(dict), froster::ValueError,
                         MessageContains({"UTF-8"}));
  }
  {
    StateDict dict;
    dict.insert("moved", froster::Tensor<float>());
    CHECK_THROWS_MATCHES(froster::io::serialize_safetensors(dict), froster::ValueError,
                         MessageContains({"'moved'"}));
  }
  {
    StateDict dict;
    dict.insert("w", tensor({1}, {1.0f}));
    const std::string missing_dir = (fs::temp_directory_path() / "froster_no_such_dir" / "x.safetensors").string();
    CHECK_THROWS_MATCHES(froster::io::save_safetensors(missing_dir, dict), froster::IoError,
                         MessageContains({"froster_no_such_dir"}));
  }
}

TEST_CASE("safetensors: load errors name the path", "[io][safetensors]") {
  CHECK_THROWS_MATCHES(froster::io::load_safetensors("/nonexistent/froster.safetensors"), froster::IoError,
                       MessageContains({"/nonexistent/froster.safetensors"}));
  const TempPath empty("froster_test_st_empty");
  { std::ofstream(empty.path, std::ios::binary); }
  CHECK_THROWS_MATCHES(froster::io::load_safetensors(empty.path), froster::FormatError,
                       MessageContains({empty.path, "8-byte"}));
}

TEST_CASE("safetensors: every truncation of a valid file is a FormatError", "[io][safetensors]") {
  const auto bytes = read_bytes(data_path("safetensors_mixed.safetensors"));
  REQUIRE_NOTHROW(parse(bytes));
  std::size_t failures = 0;
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    const std::vector<std::byte> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(size));
    try {
      (void)parse(prefix);
    } catch (const froster::FormatError&) {
      ++failures;
    }
  }
  CHECK(failures == bytes.size());
}

TEST_CASE("safetensors: hostile headers are FormatErrors that say what is wrong", "[io][safetensors]") {
  const std::string ok = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  REQUIRE_NOTHROW(parse(make_file("{" + ok + "}", 8)));

  SECTION("sizes") {
    expect_format_error(std::vector<std::byte>(7), {"7 bytes", "8-byte"});
    expect_format_error(make_file("{}", 0, 0xffffffffffffffffull), {"header length", "limit"});
    expect_format_error(make_file("{}", 0, 0x8000000000000000ull), {"limit"});
    expect_format_error(make_file("{}", 0, 200'000'000), {"200000000", "limit"});
    expect_format_error(make_file("{}", 0, 3), {"only 2 bytes follow", "truncated"});
    froster::io::SafetensorsOptions small;
    small.max_header_bytes = 16;
    expect_format_error(make_file("{" + ok + "}", 8), {"limit of 16"}, small);
    expect_format_error(make_file(""), {"empty header"});
  }
  SECTION("JSON") {
    expect_format_error(make_file(" {}"), {"start with '{'"});
    expect_format_error(make_file("[]"), {"start with '{'"});
    expect_format_error(make_file("{\"t\":"), {"not valid JSON"});
    expect_format_error(make_file("{} x"), {"not valid JSON"});
    expect_format_error(make_file("{}{}"), {"not valid JSON"});
    expect_format_error(make_file("{\"t\xff\":{}}"), {"not valid JSON"});
    expect_format_error(make_file(std::string("{\0}", 3)), {"not valid JSON"});
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":[1e999],"data_offsets":[0,4]}})", 4),
                        {"not valid JSON"});
  }
  SECTION("types") {
    expect_format_error(make_file(R"({"t":5})"), {"'t'", "should be an object"});
    expect_format_error(make_file(R"({"t":[1]})"), {"'t'", "should be an object"});
    expect_format_error(make_file(R"({"t":{"dtype":3,"shape":[],"data_offsets":[0,4]}})", 4), {"'dtype'"});
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":2,"data_offsets":[0,4]}})", 4), {"'shape'"});
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":{},"data_offsets":[0,4]}})", 4), {"'shape'"});
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", 8),
                        {"'shape'", "string"});
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":[[2]],"data_offsets":[0,8]}})", 8),
                        {"'shape'", "array"});
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":"0-8"}})", 8),
                        {"'data_offsets'"});
    expect_format_error(make_file(R"({"__metadata__":{"a":1}})"), {"__metadata__", "'a'", "string"});
    expect_format_error(make_file(R"({"__metadata__":{"a":{}}})"), {"__metadata__", "'a'"});
    expect_format_error(make_file(R"({"__metadata__":"x"})"), {"__metadata__", "object"});
  }
  SECTION("missing fields") {
    expect_format_error(make_file(R"({"t":{"shape":[],"data_offsets":[0,4]}})", 4), {"'t'", "no 'dtype'"});
    expect_format_error(make_file(R"({"t":{"dtype":"F32","data_offsets":[0,4]}})", 4), {"'t'", "no 'shape'"});
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":[]}})", 4), {"'t'", "no 'data_offsets'"});
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":[],"data_offsets":[0]}})", 4),
                        {"'t'", "2 numbers"});
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":[],"data_offsets":[0,4,4]}})", 4),
                        {"'t'", "more than 2"});
  }
  SECTION("numbers") {
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
                        {"'t'", "'shape'", "negative"});
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8),
                        {"'t'", "not an integer"});
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":[1e3],"data_offsets":[0,8]}})", 8),
                        {"not an integer"});
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]}})", 8),
                        {"'t'", "not an integer"});
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,8]}})", 8),
                        {"'t'", "extent"});
    expect_format_error(
        make_file(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8),
        {"'t'", "overflows"});
    expect_format_error(make_file(R"({"t":{"dtype":"F16","shape":[2305843009213693952,0],"data_offsets":[0,0]}})"),
                        {"'t'", "address"});
    CHECK(parse(make_file(R"({"t":{"dtype":"F16","shape":[0,2305843009213693952],"data_offsets":[0,0]}})"))
              .tensors.at("t")
              .extent(1) == 2305843009213693952);
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":[1,1,1,1,1,1,1],"data_offsets":[0,4]}})", 4),
                        {"'t'", "more than 6 dimensions"});
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", 8),
                        {"'t'", "'data_offsets'", "negative"});
  }
  SECTION("offsets") {
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8),
                        {"'t'", "begin after end"});
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4),
                        {"'t'", "beyond the data region of 4 bytes"});
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}})", 8),
                        {"'t'", "beyond the data region"});
    expect_format_error(make_file(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
                        {"'t'", "needs 12"});
    expect_format_error(make_file(R"({"t":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}})", 8),
                        {"'t'", "F16", "needs 4"});
    expect_format_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                  R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                  12),
                        {"overlaps", "'a'", "'b'"});
    expect_format_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                  R"("b":{"dtype":"F32","shape":[0],"data_offsets":[2,2]}})",
                                  4),
                        {"overlaps", "'b'"});
    expect_format_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                  R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                                  12),
                        {"hole", "[4, 8)", "'b'"});
    expect_format_error(make_file(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
                        {"hole", "[0, 4)"});
    expect_format_error(make_file("{" + ok + "}", 12), {"4 bytes after the last tensor"});
    expect_format_error(make_file("{}", 1), {"1 bytes after the last tensor"});
  }
  SECTION("duplicates") {
    expect_format_error(make_file("{" + ok + "," + ok + "}", 8), {"'t' twice"});
    expect_format_error(make_file(R"({"t":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}})", 8),
                        {"'t'", "two 'dtype'"});
    expect_format_error(make_file(R"({"__metadata__":{"k":"1","k":"2"}})"), {"__metadata__", "'k' twice"});
    expect_format_error(make_file(R"({"__metadata__":{},"__metadata__":{}})"), {"'__metadata__' twice"});
  }
  SECTION("dtypes") {
    for (const char* dtype : {"F8_E4M3", "U16", "U64", "C64", "f32", ""}) {
      INFO(dtype);
      expect_format_error(make_file(std::string(R"({"w.q":{"dtype":")") + dtype +
                                    R"(","shape":[1],"data_offsets":[0,1]}})", 1),
                          {"'w.q'", "dtype", "does not read"});
    }
  }
  SECTION("values") {
    // 2^24 + 1 as int64: float32 cannot hold it (the exactness rule keeps position ids and counts honest).
    std::vector<std::uint8_t> i64(8, 0);
    i64[0] = 1;
    i64[3] = 1;
    expect_format_error(make_file(R"({"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", i64),
                        {"'ids'", "16777217", "exactly"});
    expect_format_error(make_file(R"({"ids":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})",
                                  std::vector<std::uint8_t>{1, 0, 0, 1}),
                        {"'ids'", "16777217"});
    expect_format_error(make_file(R"({"m":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})",
                                  std::vector<std::uint8_t>{1, 2}),
                        {"'m'", "BOOL", "byte 2"});
    std::vector<std::uint8_t> f64(8);
    const double big = 1e300;
    std::memcpy(f64.data(), &big, 8);
    expect_format_error(make_file(R"({"d":{"dtype":"F64","shape":[],"data_offsets":[0,8]}})", f64),
                        {"'d'", "float32 range"});
  }
  SECTION("nesting") {
    std::string deep = R"({"t":{"dtype":"F32","shape":[],"data_offsets":[0,4],"extra":)";
    for (int i = 0; i < 100; ++i) deep += "[";
    for (int i = 0; i < 100; ++i) deep += "]";
    expect_format_error(make_file(deep + "}}", 4), {"nests deeper"});
  }
}

TEST_CASE("safetensors: what the format allows is accepted", "[io][safetensors]") {
  // No tensors at all, with or without metadata.
  CHECK(parse(make_file("{}")).tensors.empty());
  CHECK(parse(make_file("{}      ")).tensors.empty());  // the writer's space padding
  const auto meta = parse(make_file(R"({"__metadata__":{"format":"pt","empty":""}})"));
  CHECK(meta.metadata == std::map<std::string, std::string>{{"format", "pt"}, {"empty", ""}});
  // Unknown fields are ignored (the reference ignores them too); empty tensors may share an offset.
  const auto f = parse(make_file(R"({"b":{"dtype":"F32","shape":[0],"data_offsets":[4,4],"x":{"y":[null,true]}},)"
                                 R"("e":{"dtype":"BF16","shape":[3,0],"data_offsets":[0,0]},)"
                                 R"("a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                 R"("c":{"dtype":"I8","shape":[],"data_offsets":[4,5]}})",
                                 std::vector<std::uint8_t>{0, 1, 2, 255, 0x80}));
  CHECK(f.tensors.names() == std::vector<std::string>{"e", "a", "b", "c"});
  CHECK(f.tensors.at("a").data()[3] == 255.0f);
  CHECK(f.tensors.at("c").data()[0] == -128.0f);
  CHECK(f.tensors.at("c").rank() == 0);
  // The largest exact integers convert.
  std::vector<std::uint8_t> i64(16, 0);
  const std::int64_t values[2] = {std::int64_t{1} << 62, -(std::int64_t{1} << 24)};
  std::memcpy(i64.data(), values, 16);
  const auto ints = parse(make_file(R"({"i":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", i64));
  CHECK(ints.tensors.at("i").data()[0] == 0x1p62f);
  CHECK(ints.tensors.at("i").data()[1] == -0x1p24f);
}

TEST_CASE("float16: half <-> float is exact one way and round-to-nearest-even the other", "[io][safetensors]") {
  using froster::io::float_to_half;
  using froster::io::half_to_float;
  // Every half survives the round trip; NaNs stay NaN.
  for (std::uint32_t h = 0; h < 0x10000u; ++h) {
    const auto h16 = static_cast<std::uint16_t>(h);
    const float f = half_to_float(h16);
    if (std::isnan(f)) {
      CHECK((float_to_half(f) & 0x7e00u) == 0x7e00u);
      continue;
    }
    if (float_to_half(f) != h16) FAIL("half 0x" << std::hex << h << " does not round trip");
  }
  // Midpoints between neighbouring positive halves go to the even one; a float ulp either side picks the nearer.
  for (std::uint16_t h = 0; h < 0x7bffu; ++h) {
    const double lo = half_to_float(h), hi = half_to_float(static_cast<std::uint16_t>(h + 1));
    const auto mid = static_cast<float>((lo + hi) / 2);  // exact: halves have 11 significant bits
    const std::uint16_t even = (h & 1u) == 0 ? h : static_cast<std::uint16_t>(h + 1);
    if (float_to_half(mid) != even || float_to_half(std::nextafter(mid, 0.0f)) != h ||
        float_to_half(std::nextafter(mid, 1e9f)) != h + 1 || float_to_half(-mid) != (even | 0x8000u))
      FAIL("rounding around half 0x" << std::hex << h);
  }
  CHECK(float_to_half(65519.99f) == 0x7bffu);
  CHECK(float_to_half(65520.0f) == 0x7c00u);
  CHECK(float_to_half(-1e10f) == 0xfc00u);
  CHECK(float_to_half(std::numeric_limits<float>::denorm_min()) == 0u);
  CHECK(float_to_half(-0.0f) == 0x8000u);
#if defined(__FLT16_MAX__)
  // The compiler's own _Float16 conversion (libgcc / compiler-rt, round to nearest even) on a spread of floats.
  for (std::uint64_t x = 0; x < 0x100000000ull; x += 4093) {
    const float f = std::bit_cast<float>(static_cast<std::uint32_t>(x));
    if (std::isnan(f)) continue;
    const auto expected = std::bit_cast<std::uint16_t>(static_cast<_Float16>(f));
    if (float_to_half(f) != expected) FAIL("float 0x" << std::hex << x << " -> half differs from _Float16");
  }
#endif
}

TEST_CASE("float16: bfloat16 <-> float is exact one way and round-to-nearest-even the other", "[io][safetensors]") {
  using froster::io::bf16_to_float;
  using froster::io::float_to_bf16;
  for (std::uint32_t b = 0; b < 0x10000u; ++b) {
    const auto b16 = static_cast<std::uint16_t>(b);
    const float f = bf16_to_float(b16);
    CHECK(bits(f) == b << 16);
    if (std::isnan(f)) {
      if (!std::isnan(bf16_to_float(float_to_bf16(f)))) FAIL("NaN 0x" << std::hex << b << " lost");
      continue;
    }
    if (float_to_bf16(f) != b16) FAIL("bf16 0x" << std::hex << b << " does not round trip");
    // The float halfway to the next bfloat16 (same sign) goes to the even one; one float ulp either side, the
    // nearer (skipping the top of the finite range, where "next" is infinity).
    if ((b & 0x7fffu) >= 0x7f7fu) continue;
    const std::uint32_t mid = (b << 16) | 0x8000u;
    const std::uint16_t even = (b & 1u) == 0 ? b16 : static_cast<std::uint16_t>(b + 1);
    if (float_to_bf16(std::bit_cast<float>(mid)) != even || float_to_bf16(std::bit_cast<float>(mid - 1)) != b16 ||
        float_to_bf16(std::bit_cast<float>(mid + 1)) != b16 + 1)
      FAIL("rounding around bf16 0x" << std::hex << b);
  }
  CHECK(float_to_bf16(std::numeric_limits<float>::max()) == 0x7f80u);  // rounds up to infinity, as torch does
}

TEST_CASE("safetensors: the fuzz corpus replays without crashing", "[io][safetensors]") {
  const fs::path dir = fs::path(FROSTER_TEST_DATA_DIR) / ".." / ".." / "fuzz" / "corpus" / "safetensors";
  REQUIRE(fs::is_directory(dir));
  std::size_t files = 0, parsed = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    INFO(entry.path().string());
    const auto bytes = read_bytes(entry.path().string());
    try {
      const auto f = froster::io::parse_safetensors(std::span<const std::byte>(bytes), entry.path().string());
      ++parsed;
      // What loads saves and loads back to the same values.
      const auto again = froster::io::serialize_safetensors(f.tensors, f.metadata);
      const auto g = froster::io::parse_safetensors(std::span<const std::byte>(again), "re-saved");
      CHECK(g.tensors.size() == f.tensors.size());
    } catch (const froster::Error&) {
    }
  }
  CHECK(files > 10);
  CHECK(parsed > 0);
}
