// CLIP BPE tokenizer against golden ids from OpenAI's algorithm (tests/reference/make_tokenizer_fixtures.py, with
// ftfy and regex from PyPI) on the real vocabulary, the Hugging Face loading path against transformers'
// CLIPTokenizer on a small vocabulary, and malformed vocabulary files.

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <froster/io/tokenizer.hpp>

namespace {

using froster::FormatError;
using froster::IoError;
using froster::ValueError;
using froster::io::ClipTokenizer;
using nlohmann::json;

const std::string shared_vocab = FROSTER_SHARED_DATA_DIR "/bpe_simple_vocab_16e6.txt.gz";
std::string data_path(const std::string& file) { return std::string(FROSTER_TEST_DATA_DIR) + "/" + file; }

json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return json::parse(in);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool have_shared_vocab() {
  if (std::filesystem::exists(shared_vocab)) return true;
  WARN("skipped: the CLIP vocabulary " << shared_vocab << " is absent (it is not part of the repository)");
  return false;
}

// One tokenizer on the real vocabulary for all tests (loading it takes a moment).
const ClipTokenizer& real_tokenizer() {
  static const ClipTokenizer tok = ClipTokenizer::from_bpe_file(shared_vocab);
  return tok;
}

// A fresh directory under the system temp dir, removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("froster_tokenizer_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

std::string gzip_bytes(const std::string& data) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::vector<std::int32_t> ids_of(const json& j) { return j.get<std::vector<std::int32_t>>(); }

// The OpenAI-format file with the merges of the small HF fixture: same merges, same algorithm.
std::string small_bpe_text() {
  std::string merges = read_text(data_path("tokenizer_hf/merges.txt"));
  REQUIRE(merges.rfind("#version", 0) == 0);
  std::string body = merges.substr(merges.find('\n') + 1);
  if (!body.empty() && body.back() == '\n') body.pop_back();
  return "\"bpe_simple_vocab_16e6.txt#version: 0.2\n" + body;
}

template <class E>
void require_throws_naming(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    FAIL("expected an exception naming '" << needle << "'");
  } catch (const E& e) {
    INFO("message: " << e.what());
    CHECK(std::string(e.what()).find(needle) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("tokenizer: golden ids of OpenAI's CLIP tokenizer on the real vocabulary", "[io][tokenizer]") {
  if (!have_shared_vocab()) return;
  const ClipTokenizer& tok = real_tokenizer();
  json golden = read_json(data_path("tokenizer_golden.json"));
  CHECK(tok.sot_token() == golden["sot"].get<std::int32_t>());
  CHECK(tok.eot_token() == golden["eot"].get<std::int32_t>());
  CHECK(tok.vocab_size() == golden["vocab_size"].get<std::int64_t>());
  REQUIRE(golden["cases"].size() >= 300);
  int mismatches = 0;
  for (const auto& c : golden["cases"]) {
    std::string text = c["text"].get<std::string>();
    INFO("text: " << json(text).dump());
    CHECK(ClipTokenizer::clean(text) == c["clean"].get<std::string>());
    auto ids = tok.encode(text);
    CHECK(ids == ids_of(c["ids"]));
    mismatches += ids != ids_of(c["ids"]) ? 1 : 0;
  }
  CHECK(mismatches == 0);
}

TEST_CASE("tokenizer: where ftfy changes the text we match the reference with NFC in its place",
          "[io][tokenizer]") {
  if (!have_shared_vocab()) return;
  const ClipTokenizer& tok = real_tokenizer();
  json golden = read_json(data_path("tokenizer_golden.json"));
  REQUIRE(!golden["ftfy_differences"].empty());
  for (const auto& c : golden["ftfy_differences"]) {
    std::string text = c["text"].get<std::string>();
    INFO("text: " << json(text).dump());
    CHECK(ClipTokenizer::clean(text) == c["clean"].get<std::string>());
    CHECK(tok.encode(text) == ids_of(c["nfc_ids"]));
    CHECK(ids_of(c["nfc_ids"]) != ids_of(c["reference_ids"]));  // the fixture lists real differences only
  }
}

TEST_CASE("tokenizer: tokenize pads with zeros and truncates keeping the end token, like clip.tokenize",
          "[io][tokenizer]") {
  if (!have_shared_vocab()) return;
  json golden = read_json(data_path("tokenizer_golden.json"));
  ClipTokenizer tok = ClipTokenizer::from_bpe_file(shared_vocab);
  std::vector<std::string> warnings;
  tok.set_warning_handler([&](const std::string& m) { warnings.push_back(m); });
  std::size_t long_rows = 0;
  for (const auto& c : golden["tokenize"]) {
    std::string text = c["text"].get<std::string>();
    auto n = c["context_length"].get<froster::index_t>();
    auto expected = ids_of(c["ids"]);
    INFO("text: " << json(text).dump() << ", context length " << n);
    auto t32 = tok.tokenize<std::int32_t>(text, n);
    auto t64 = tok.tokenize<std::int64_t>(text, n);
    REQUIRE(t32.extent(0) == 1);
    REQUIRE(t32.extent(1) == n);
    REQUIRE(t64.extent(1) == n);
    for (froster::index_t k = 0; k < n; ++k) {
      CHECK(t32.data()[k] == expected[static_cast<std::size_t>(k)]);
      CHECK(t64.data()[k] == expected[static_cast<std::size_t>(k)]);
    }
    auto total = tok.encode(text).size() + 2;
    if (total > static_cast<std::size_t>(n)) {
      ++long_rows;
      require_throws_naming<ValueError>([&] { (void)tok.tokenize(text, n, false); }, std::to_string(total));
    }
  }
  REQUIRE(long_rows >= 2);
  REQUIRE(warnings.size() == 1);  // many truncations, one notice per tokenizer
  CHECK(warnings[0].find("context length") != std::string::npos);

  // A batch: each row is its text's own tokenization.
  std::vector<std::string> texts;
  for (const auto& c : golden["tokenize"])
    if (c["context_length"] == 77) texts.push_back(c["text"].get<std::string>());
  auto batch = tok.tokenize(std::span<const std::string>(texts));
  REQUIRE(batch.extent(0) == static_cast<froster::index_t>(texts.size()));
  for (std::size_t r = 0; r < texts.size(); ++r) {
    auto row = tok.tokenize(texts[r]);
    for (froster::index_t k = 0; k < 77; ++k) CHECK(batch.data()[r * 77 + static_cast<std::size_t>(k)] == row.data()[k]);
  }
  CHECK(tok.tokenize(std::span<const std::string>()).extent(0) == 0);
  CHECK_THROWS_AS(tok.tokenize("a", 0), ValueError);
}

TEST_CASE("tokenizer: the truncation notice goes to std::clog by default and can be silenced", "[io][tokenizer]") {
  if (!have_shared_vocab()) return;
  ClipTokenizer tok = ClipTokenizer::from_bpe_file(shared_vocab);
  std::ostringstream captured;
  auto* old = std::clog.rdbuf(captured.rdbuf());
  (void)tok.tokenize(std::string(300, '!') + " a b c d e f", 8);
  (void)tok.tokenize("a b c d e f g h i j", 8);
  std::clog.rdbuf(old);
  std::string log = captured.str();
  CHECK(log.find("warning") != std::string::npos);
  CHECK(log.find('\n') == log.size() - 1);  // one line, once

  ClipTokenizer quiet = ClipTokenizer::from_bpe_file(shared_vocab);
  quiet.set_warning_handler(nullptr);
  std::ostringstream none;
  old = std::clog.rdbuf(none.rdbuf());
  (void)quiet.tokenize("a b c d e f g h i j", 8);
  std::clog.rdbuf(old);
  CHECK(none.str().empty());
}

TEST_CASE("tokenizer: decode as the reference, and round trips of ASCII text", "[io][tokenizer]") {
  if (!have_shared_vocab()) return;
  const ClipTokenizer& tok = real_tokenizer();
  json golden = read_json(data_path("tokenizer_golden.json"));
  for (const auto& c : golden["decode"]) {
    INFO("ids: " << c["ids"].dump());
    CHECK(tok.decode(ids_of(c["ids"])) == c["text"].get<std::string>());
  }
  // The ids spell the cleaned text back, with a space after each word: equal once spaces are dropped.
  auto squeeze = [](std::string s) {
    std::erase(s, ' ');
    return s;
  };
  int checked = 0;
  for (const auto& c : golden["cases"]) {
    std::string text = c["text"].get<std::string>();
    bool ascii = std::all_of(text.begin(), text.end(), [](char ch) { return ch > 0x20 || ch == ' '; }) &&
                 text.find('&') == std::string::npos;
    if (!ascii) continue;
    INFO("text: " << json(text).dump());
    CHECK(squeeze(tok.decode(tok.encode(text))) == squeeze(ClipTokenizer::clean(text)));
    ++checked;
  }
  CHECK(checked > 100);
  std::vector<std::int64_t> bad{tok.vocab_size()};
  CHECK_THROWS_AS(tok.decode(std::span<const std::int64_t>(bad)), ValueError);
  std::vector<std::int32_t> negative{-1};
  CHECK_THROWS_AS(tok.decode(negative), ValueError);
}

TEST_CASE("tokenizer: whitespace and lower case follow Python's tables", "[io][tokenizer]") {
  json sets = read_json(data_path("tokenizer_unicode.json"));
  auto isspace = sets["python_isspace"].get<std::vector<std::uint32_t>>();
  auto regex_s = sets["regex_s"].get<std::vector<std::uint32_t>>();
  std::vector<std::uint32_t> ours_isspace, ours_regex;
  for (std::uint32_t c = 0; c < 0x110000; ++c) {
    if (froster::io::unicode::python_isspace(c)) ours_isspace.push_back(c);
    if (froster::io::unicode::regex_space(c)) ours_regex.push_back(c);
  }
  CHECK(ours_isspace == isspace);
  CHECK(ours_regex == regex_s);
  for (const auto& [code, lower] : sets["python_lower_multi"].items()) {
    std::u32string expected;
    for (auto c : lower) expected += static_cast<char32_t>(c.get<std::uint32_t>());
    CHECK(froster::io::unicode::python_lower(std::u32string(1, static_cast<char32_t>(std::stoul(code)))) == expected);
  }
}

TEST_CASE("tokenizer: text that is not UTF-8 is rejected naming the byte", "[io][tokenizer]") {
  require_throws_naming<ValueError>([] { (void)ClipTokenizer::clean("ok \xC3\x28"); }, "byte 3");
  require_throws_naming<ValueError>([] { (void)ClipTokenizer::clean("\xED\xA0\x80"); }, "byte 0");  // a surrogate
  CHECK_THROWS_AS(ClipTokenizer::clean("\xF4\x90\x80\x80"), ValueError);                          // > U+10FFFF
  CHECK_THROWS_AS(ClipTokenizer::clean("\xC0\xAF"), ValueError);                                  // overlong
}

TEST_CASE("tokenizer: Hugging Face vocab.json + merges.txt against transformers' CLIPTokenizer", "[io][tokenizer]") {
  json golden = read_json(data_path("tokenizer_hf_golden.json"));
  ClipTokenizer hf = ClipTokenizer::from_hf_directory(data_path("tokenizer_hf"));
  CHECK(hf.sot_token() == golden["sot"].get<std::int32_t>());
  CHECK(hf.eot_token() == golden["eot"].get<std::int32_t>());
  CHECK(hf.vocab_size() == golden["vocab_size"].get<std::int64_t>());
  REQUIRE(golden["cases"].size() >= 10);
  for (const auto& c : golden["cases"]) {
    std::string text = c["text"].get<std::string>();
    INFO("text: " << json(text).dump());
    CHECK(hf.encode(text) == ids_of(c["ids"]));
  }
  // load() picks the format from the path.
  ClipTokenizer loaded = ClipTokenizer::load(data_path("tokenizer_hf"));
  CHECK(loaded.encode("a photo of a dog.") == hf.encode("a photo of a dog."));

  // The same merges in OpenAI's gzip format give the same vocabulary and ids.
  TempDir dir;
  write_file(dir.file("small.txt.gz"), gzip_bytes(small_bpe_text()));
  ClipTokenizer openai = ClipTokenizer::from_bpe_file(dir.file("small.txt.gz"));
  CHECK(openai.vocab_size() == hf.vocab_size());
  CHECK(openai.eot_token() == hf.eot_token());
  for (const auto& c : golden["cases"]) CHECK(openai.encode(c["text"].get<std::string>()) == ids_of(c["ids"]));
  // A newline at the end inside the merge range: the reference's vocabulary gets an empty token there.
  write_file(dir.file("newline.txt.gz"), gzip_bytes(small_bpe_text() + "\n"));
  ClipTokenizer newline = ClipTokenizer::from_bpe_file(dir.file("newline.txt.gz"));
  CHECK(newline.vocab_size() == hf.vocab_size() + 1);
  CHECK(newline.eot_token() == hf.eot_token() + 1);
  CHECK(newline.encode("a photo of a dog.") == hf.encode("a photo of a dog."));
}

TEST_CASE("tokenizer: missing and malformed OpenAI vocabularies", "[io][tokenizer]") {
  TempDir dir;
  CHECK_THROWS_AS(ClipTokenizer::from_bpe_file(dir.file("absent.txt.gz")), IoError);
  CHECK_THROWS_AS(ClipTokenizer::load(dir.file("absent.txt.gz")), IoError);

  std::string good = gzip_bytes(small_bpe_text());
  write_file(dir.file("plain.txt"), small_bpe_text());
  require_throws_naming<FormatError>([&] { (void)ClipTokenizer::from_bpe_file(dir.file("plain.txt")); },
                                     "plain.txt");
  write_file(dir.file("empty.gz"), "");
  CHECK_THROWS_AS(ClipTokenizer::from_bpe_file(dir.file("empty.gz")), FormatError);
  write_file(dir.file("truncated.gz"), good.substr(0, good.size() / 2));
  require_throws_naming<FormatError>([&] { (void)ClipTokenizer::from_bpe_file(dir.file("truncated.gz")); },
                                     "truncated");
  std::string flipped = good;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x55);
  write_file(dir.file("flipped.gz"), flipped);
  CHECK_THROWS_AS(ClipTokenizer::from_bpe_file(dir.file("flipped.gz")), FormatError);
  write_file(dir.file("trailing.gz"), good + "garbage");
  CHECK_THROWS_AS(ClipTokenizer::from_bpe_file(dir.file("trailing.gz")), FormatError);
  write_file(dir.file("padded.gz"), good + std::string(16, '\0'));  // zero padding is ignored, as Python does
  CHECK(ClipTokenizer::from_bpe_file(dir.file("padded.gz")).vocab_size() > 512);
  write_file(dir.file("two_members.gz"), gzip_bytes("header\ni n\n") + gzip_bytes("t h"));
  CHECK(ClipTokenizer::from_bpe_file(dir.file("two_members.gz")).vocab_size() == 512 + 2 + 2);

  auto with_lines = [&](const std::string& name, const std::string& text) {
    write_file(dir.file(name), gzip_bytes(text));
    return dir.file(name);
  };
  std::string three = with_lines("three.gz", "header\ni n\nt h e\n");
  require_throws_naming<FormatError>([&] { (void)ClipTokenizer::from_bpe_file(three); }, "line 3");
  std::string one = with_lines("one.gz", "header\ni n\nth\na b\n");
  require_throws_naming<FormatError>([&] { (void)ClipTokenizer::from_bpe_file(one); }, "line 3");
  std::string unknown = with_lines("unknown.gz", "header\ni n\nzq xy\n");
  require_throws_naming<FormatError>([&] { (void)ClipTokenizer::from_bpe_file(unknown); }, "line 3");
  std::string alphabet = with_lines("alphabet.gz", "header\n\xE4\xB8\x80 a\n");
  require_throws_naming<FormatError>([&] { (void)ClipTokenizer::from_bpe_file(alphabet); }, "line 2");
  std::string not_utf8 = with_lines("not_utf8.gz", "header\n\xFF n\n");
  require_throws_naming<FormatError>([&] { (void)ClipTokenizer::from_bpe_file(not_utf8); }, "UTF-8");
  std::string blank = with_lines("blank.gz", "header\ni n\n\nt h\n");
  require_throws_naming<FormatError>([&] { (void)ClipTokenizer::from_bpe_file(blank); }, "line 3");
}

TEST_CASE("tokenizer: missing and malformed Hugging Face files", "[io][tokenizer]") {
  TempDir dir;
  std::string vocab = read_text(data_path("tokenizer_hf/vocab.json"));
  std::string merges = read_text(data_path("tokenizer_hf/merges.txt"));
  auto files = [&](const std::string& v, const std::string& m) {
    write_file(dir.file("vocab.json"), v);
    write_file(dir.file("merges.txt"), m);
    return ClipTokenizer::from_hf_directory(dir.path.string());
  };
  CHECK_THROWS_AS(ClipTokenizer::from_hf_directory(dir.file("absent")), IoError);
  write_file(dir.file("vocab.json"), vocab);
  CHECK_THROWS_AS(ClipTokenizer::from_hf_files(dir.file("vocab.json"), dir.file("absent.txt")), IoError);
  CHECK_NOTHROW(files(vocab, merges));

  require_throws_naming<FormatError>([&] { files("[1, 2]", merges); }, "object");
  require_throws_naming<FormatError>([&] { files("{\"a\": 1", merges); }, "vocab.json");
  require_throws_naming<FormatError>([&] { files("", merges); }, "JSON");
  require_throws_naming<FormatError>([&] { files("{\"a\": \"x\"}", merges); }, "integer");
  require_throws_naming<FormatError>([&] { files("{\"a\": -1}", merges); }, "integer");
  require_throws_naming<FormatError>([&] { files("{\"a\": 1e9}", merges); }, "integer");
  require_throws_naming<FormatError>([&] { files("{\"a\": 99999999999}", merges); }, "integer");
  require_throws_naming<FormatError>([&] { files("{\"a\": 1, \"b\": 1}", ""); }, "id 1");
  require_throws_naming<FormatError>([&] { files("{\"\\u4e00\": 0}", ""); }, "byte alphabet");
  require_throws_naming<FormatError>([&] { files("{\"a\": 0}", ""); }, "byte token");

  json v = json::parse(vocab);
  v.erase("<|endoftext|>");
  require_throws_naming<FormatError>([&] { files(v.dump(), merges); }, "<|endoftext|>");
  require_throws_naming<FormatError>([&] { files(vocab, merges + "zq xy\n"); }, "not in the vocabulary");
  std::size_t lines = static_cast<std::size_t>(std::count(merges.begin(), merges.end(), '\n'));
  require_throws_naming<FormatError>([&] { files(vocab, merges + "t h e\n"); }, "line " + std::to_string(lines + 1));
  require_throws_naming<FormatError>([&] { files(vocab, merges + "th\n"); }, "line " + std::to_string(lines + 1));
  // "q u" is two byte tokens whose join "qu" the small vocabulary does not hold.
  if (!v.contains("qu")) require_throws_naming<FormatError>([&] { files(vocab, merges + "q u\n"); }, "merge result");
}
