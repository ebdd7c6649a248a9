#pragma once
/// @file
/// `ClipTokenizer`: CLIP's byte-level BPE tokenizer, as OpenAI's `clip/simple_tokenizer.py` and `clip.tokenize`
/// define it. Reads OpenAI's `bpe_simple_vocab_16e6.txt.gz` or a Hugging Face `vocab.json` + `merges.txt`.
///
/// Text goes through: Unicode NFC (in place of `ftfy.fix_text`, see docs/io_tokenizer.md), `html.unescape` twice,
/// `strip()`, whitespace runs to one space, `strip()`, `lower()`, the pre-tokenizer regex
/// `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+` (IGNORECASE), then
/// each piece's UTF-8 bytes through the byte alphabet and BPE by merge rank.

#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <mutex>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "froster/core/error.hpp"
#include "froster/core/tensor.hpp"
#include "froster/io/gzip.hpp"
#include "froster/io/mapped_file.hpp"
#include "froster/io/unicode.hpp"

namespace froster::io {

namespace detail {

/// GPT-2/CLIP byte alphabet: printable Latin-1 bytes stand for themselves, the other 68 bytes for U+0100 onwards.
struct ByteAlphabet {
  std::array<char32_t, 256> to_char{};
  std::array<int, 0x144> to_byte{};  // -1 where the character is not in the alphabet

  ByteAlphabet() {
    to_byte.fill(-1);
    char32_t extra = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char32_t c = printable ? static_cast<char32_t>(b) : 256 + extra++;
      to_char[static_cast<std::size_t>(b)] = c;
      to_byte[c] = b;
    }
  }
  int byte_of(char32_t c) const { return c < to_byte.size() ? to_byte[c] : -1; }
};

inline const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet alphabet;
  return alphabet;
}

/// Splits `line` on runs of Python whitespace (`str.split()` without arguments).
inline std::vector<std::u32string> split_python(std::u32string_view line) {
  std::vector<std::u32string> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && unicode::python_isspace(line[i])) ++i;
    std::size_t j = i;
    while (j < line.size() && !unicode::python_isspace(line[j])) ++j;
    if (j > i) out.emplace_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

inline std::string read_whole_file(const std::string& path) {
  MappedFile file(path);
  auto bytes = file.bytes();
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

}  // namespace detail

class ClipTokenizer {
 public:
  /// Receives the one-time truncation notice of `tokenize` (see `set_warning_handler`).
  using WarningHandler = std::function<void(const std::string&)>;

  /// OpenAI's vocabulary file (`bpe_simple_vocab_16e6.txt.gz`), read as `simple_tokenizer.py` does: lines 2 to
  /// 48895 are merges; the vocabulary is the 256 byte characters, the same with "</w>", the merges joined, then
  /// "<|startoftext|>" and "<|endoftext|>" (49408 tokens for the real file).
  /// Throws IoError when the file cannot be read; FormatError (naming the file and line) when it is not gzip,
  /// not UTF-8, or a merge line is not two symbols of the byte alphabet that are in the vocabulary.
  static ClipTokenizer from_bpe_file(const std::string& path) {
    std::string text = gunzip_file(path);
    std::u32string content;
    try {
      content = unicode::decode_utf8(text);
    } catch (const ValueError& e) {
      throw FormatError(froster::detail::concat("'", path, "': ", e.what()));
    }
    std::vector<std::u32string_view> lines;
    for (std::size_t start = 0;;) {
      std::size_t nl = content.find(U'\n', start);
      lines.emplace_back(std::u32string_view(content).substr(start, nl == std::u32string::npos ? nl : nl - start));
      if (nl == std::u32string::npos) break;
      start = nl + 1;
    }
    constexpr std::size_t last_merge_line = 49152 - 256 - 2 + 1;  // exclusive, as in the reference
    ClipTokenizer tok;
    std::vector<std::string> vocab = tok.alphabet_tokens();
    std::vector<std::pair<std::string, std::string>> merges;
    std::vector<std::size_t> merge_lines;
    for (std::size_t k = 1; k < std::min(lines.size(), last_merge_line); ++k) {
      auto fields = detail::split_python(lines[k]);
      if (fields.empty() && k + 1 == lines.size()) {
        // The file ends with a newline inside the merge range: the reference adds an empty token here.
        vocab.emplace_back();
        continue;
      }
      require<FormatError>(fields.size() == 2, "'", path, "' line ", k + 1,
                           ": expected a merge of two space-separated symbols, found ", fields.size(), " fields");
      for (const auto& f : fields) tok.check_alphabet(f, path, k + 1);
      merges.emplace_back(unicode::to_utf8(fields[0]), unicode::to_utf8(fields[1]));
      merge_lines.push_back(k + 1);
      vocab.push_back(merges.back().first + merges.back().second);
    }
    vocab.emplace_back("<|startoftext|>");
    vocab.emplace_back("<|endoftext|>");
    tok.decoder_ = vocab;
    for (std::size_t id = 0; id < vocab.size(); ++id) tok.encoder_[vocab[id]] = static_cast<std::int32_t>(id);
    tok.present_.assign(vocab.size(), true);
    for (std::size_t m = 0; m < merges.size(); ++m) {
      tok.add_merge(merges[m].first, merges[m].second, static_cast<std::int32_t>(m), path, merge_lines[m]);
    }
    tok.finish(path);
    return tok;
  }

  /// A Hugging Face CLIP tokenizer: `vocab.json` (an object token -> id) and `merges.txt` (an optional
  /// "#version" line, then one "a b" merge per line in rank order).
  /// Throws IoError when a file cannot be read; FormatError (naming the file, and the line or token) when the
  /// JSON is malformed or not an object of integer ids in [0, 2^24) without duplicates, a token is not made of
  /// the byte alphabet, a merge line is not two symbols, a merge or its result is not in the vocabulary, or the
  /// byte tokens or the special tokens are missing.
  static ClipTokenizer from_hf_files(const std::string& vocab_json, const std::string& merges_txt) {
    ClipTokenizer tok;
    nlohmann::json vocab;
    try {
      vocab = nlohmann::json::parse(detail::read_whole_file(vocab_json));
    } catch (const nlohmann::json::parse_error& e) {
      throw FormatError(froster::detail::concat("'", vocab_json, "' is not valid JSON (byte ", e.byte, "): ",
                                                e.what()));
    }
    require<FormatError>(vocab.is_object(), "'", vocab_json, "' must hold a JSON object token -> id, found ",
                         vocab.type_name());
    constexpr std::int64_t max_id = std::int64_t{1} << 24;
    std::int64_t top = -1;
    for (const auto& [token, id] : vocab.items()) {
      require<FormatError>(id.is_number_integer() && id.get<std::int64_t>() >= 0 && id.get<std::int64_t>() < max_id,
                           "'", vocab_json, "': the id of token '", token, "' must be an integer in [0, ", max_id,
                           "), found ", id.dump());
      top = std::max(top, id.get<std::int64_t>());
    }
    tok.decoder_.assign(static_cast<std::size_t>(top + 1), std::string());
    tok.present_.assign(static_cast<std::size_t>(top + 1), false);
    for (const auto& [token, id_json] : vocab.items()) {
      auto id = static_cast<std::size_t>(id_json.get<std::int64_t>());
      std::u32string chars;
      try {
        chars = unicode::decode_utf8(token);
      } catch (const ValueError& e) {
        throw FormatError(froster::detail::concat("'", vocab_json, "': token with id ", id, ": ", e.what()));
      }
      tok.check_alphabet(chars, vocab_json, 0, token);
      require<FormatError>(!tok.present_[id], "'", vocab_json, "': id ", id, " is given to both '",
                           tok.decoder_[id], "' and '", token, "'");
      tok.present_[id] = true;
      tok.decoder_[id] = token;
      tok.encoder_[token] = static_cast<std::int32_t>(id);
    }

    std::string merges_text = detail::read_whole_file(merges_txt);
    std::int32_t rank = 0;
    std::size_t line_no = 0;
    for (std::size_t start = 0; start < merges_text.size();) {
      std::size_t nl = merges_text.find('\n', start);
      std::string_view line = std::string_view(merges_text).substr(start, nl == std::string::npos ? nl : nl - start);
      start = nl == std::string::npos ? merges_text.size() : nl + 1;
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
      std::size_t space = line.find(' ');
      require<FormatError>(space != std::string_view::npos && space > 0 && space + 1 < line.size() &&
                               line.find(' ', space + 1) == std::string_view::npos,
                           "'", merges_txt, "' line ", line_no, ": expected 'a b', found '", line, "'");
      tok.add_merge(std::string(line.substr(0, space)), std::string(line.substr(space + 1)), rank++, merges_txt,
                    line_no);
    }
    tok.finish(vocab_json);
    return tok;
  }

  /// A Hugging Face tokenizer directory holding `vocab.json` and `merges.txt`. Throws as `from_hf_files`.
  static ClipTokenizer from_hf_directory(const std::string& dir) {
    return from_hf_files(dir + "/vocab.json", dir + "/merges.txt");
  }

  /// A directory is read as Hugging Face files, anything else as OpenAI's gzip vocabulary.
  static ClipTokenizer load(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return from_hf_directory(path);
    return from_bpe_file(path);
  }

  ClipTokenizer(ClipTokenizer&&) noexcept = default;
  ClipTokenizer& operator=(ClipTokenizer&&) noexcept = default;

  std::int32_t sot_token() const { return sot_; }
  std::int32_t eot_token() const { return eot_; }
  /// Size of the id space: one more than the largest id (49408 for OpenAI's vocabulary).
  index_t vocab_size() const { return static_cast<index_t>(decoder_.size()); }

  /// The id of a token given in the byte alphabet (for example "a</w>"), or -1.
  std::int32_t token_id(const std::string& token) const {
    auto it = encoder_.find(token);
    return it == encoder_.end() ? -1 : it->second;
  }

  /// The cleaned text the pre-tokenizer sees: NFC, html.unescape twice, strip, whitespace runs to one space,
  /// strip, lower case. Throws ValueError when `text` is not valid UTF-8 (naming the byte offset).
  static std::string clean(std::string_view text) { return unicode::to_utf8(clean_u32(text)); }

  /// The pieces the pre-tokenizer regex finds in the cleaned text (UTF-8).
  static std::vector<std::string> pre_tokenize(std::string_view text) {
    std::vector<std::string> out;
    std::u32string s = clean_u32(text);
    for_each_piece(s, [&](std::u32string_view piece) { out.push_back(unicode::to_utf8(piece)); });
    return out;
  }

  /// Token ids of `text`, without the start and end tokens (the reference's `encode`).
  /// Throws ValueError when `text` is not valid UTF-8.
  std::vector<std::int32_t> encode(std::string_view text) const {
    std::vector<std::int32_t> ids;
    std::u32string s = clean_u32(text);
    std::string piece_utf8;
    for_each_piece(s, [&](std::u32string_view piece) {
      piece_utf8.clear();
      for (char32_t c : piece) unicode::append_utf8(piece_utf8, c);
      bpe(piece_utf8, ids);
    });
    return ids;
  }

  /// `clip.tokenize`: one row per text, `[sot, ids..., eot, 0, ...]` of `context_length` (T = int32 or int64).
  /// A text that does not fit is cut to `context_length` with the end token last when `truncate` (the first
  /// time per tokenizer, the warning handler is told), otherwise ValueError names the text's token count.
  /// Throws ValueError when `context_length` < 1 or a text is not valid UTF-8.
  template <class T = std::int32_t>
  Tensor<T> tokenize(std::span<const std::string> texts, index_t context_length = 77, bool truncate = true) const {
    static_assert(std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::int64_t>,
                  "token tensors are int32 or int64");
    require<ValueError>(context_length >= 1, "context_length must be at least 1, got ", context_length);
    auto rows = static_cast<index_t>(texts.size());
    Tensor<T> out = Tensor<T>::host_zeros({rows, context_length});
    auto width = static_cast<std::size_t>(context_length);
    for (std::size_t r = 0; r < texts.size(); ++r) {
      std::vector<std::int32_t> ids = encode(texts[r]);
      std::size_t total = ids.size() + 2;
      if (total > width) {
        require<ValueError>(truncate, "text ", r, " has ", total, " tokens with the start and end tokens, more than ",
                            "the context length ", context_length, " (pass truncate = true to cut it)");
        warn_truncation(r, total, context_length);
      }
      T* row = out.data() + r * width;
      std::size_t n = std::min(total, width);
      row[0] = static_cast<T>(sot_);
      for (std::size_t k = 1; k + 1 < n; ++k) row[k] = static_cast<T>(ids[k - 1]);
      row[n - 1] = static_cast<T>(eot_);
    }
    return out;
  }

  template <class T = std::int32_t>
  Tensor<T> tokenize(const std::string& text, index_t context_length = 77, bool truncate = true) const {
    return tokenize<T>(std::span<const std::string>(&text, 1), context_length, truncate);
  }

  /// The reference's `decode`: the tokens' bytes decoded as UTF-8 with U+FFFD for ill-formed parts, then every
  /// "</w>" replaced by a space. Throws ValueError for an id outside the vocabulary.
  template <class Id>
  std::string decode(std::span<const Id> ids) const {
    static_assert(std::is_integral_v<Id>, "token ids are integers");
    std::string raw;
    for (Id id : ids) {
      bool known = true;
      if constexpr (std::is_signed_v<Id>) known = id >= 0;
      known = known && static_cast<std::uint64_t>(id) < decoder_.size() && present_[static_cast<std::size_t>(id)];
      require<ValueError>(known, "token id ", static_cast<std::int64_t>(id), " is not in the vocabulary (",
                          decoder_.size(), " ids)");
      raw += token_bytes_[static_cast<std::size_t>(id)];
    }
    std::string text = unicode::decode_utf8_replace(raw);
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
      if (text.compare(i, 4, "</w>") == 0) {
        out += ' ';
        i += 4;
      } else {
        out += text[i++];
      }
    }
    return out;
  }
  std::string decode(const std::vector<std::int32_t>& ids) const {
    return decode(std::span<const std::int32_t>(ids.data(), ids.size()));
  }

  /// Where the one-time truncation notice of `tokenize` goes. The default writes one line to std::clog; pass an
  /// empty function to silence it. Each tokenizer reports at most one truncation in its lifetime.
  void set_warning_handler(WarningHandler handler) { state_->warn = std::move(handler); }

 private:
  ClipTokenizer() : state_(std::make_unique<State>()) {}

  struct State {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<std::int32_t>> cache;
    std::atomic<bool> warned{false};
    WarningHandler warn = [](const std::string& message) { std::clog << "froster: warning: " << message << '\n'; };
  };
  static constexpr std::size_t cache_limit = 1 << 16;

  std::vector<std::string> alphabet_tokens() const {
    const auto& a = detail::byte_alphabet();
    std::vector<std::string> out;
    for (int b = 0; b < 256; ++b) out.push_back(unicode::to_utf8(std::u32string(1, a.to_char[static_cast<std::size_t>(b)])));
    for (int b = 0; b < 256; ++b) out.push_back(out[static_cast<std::size_t>(b)] + "</w>");
    return out;
  }

  /// Tokens must be spelled in the byte alphabet, so that decode can turn them back into bytes.
  static void check_alphabet(std::u32string_view chars, const std::string& file, std::size_t line,
                             std::string_view token = {}) {
    const auto& a = detail::byte_alphabet();
    for (char32_t c : chars) {
      if (a.byte_of(c) >= 0) continue;
      if (line > 0)
        throw FormatError(froster::detail::concat("'", file, "' line ", line, ": U+", std::hex,
                                                  static_cast<std::uint32_t>(c), std::dec,
                                                  " is not a character of the byte alphabet"));
      throw FormatError(froster::detail::concat("'", file, "': token '", token, "' has U+", std::hex,
                                                static_cast<std::uint32_t>(c), std::dec,
                                                ", which is not a character of the byte alphabet"));
    }
  }

  static std::uint64_t pair_key(std::int32_t a, std::int32_t b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }

  void add_merge(const std::string& a, const std::string& b, std::int32_t rank, const std::string& file,
                 std::size_t line) {
    auto ia = encoder_.find(a), ib = encoder_.find(b), ij = encoder_.find(a + b);
    require<FormatError>(ia != encoder_.end(), "'", file, "' line ", line, ": merge symbol '", a,
                         "' is not in the vocabulary");
    require<FormatError>(ib != encoder_.end(), "'", file, "' line ", line, ": merge symbol '", b,
                         "' is not in the vocabulary");
    require<FormatError>(ij != encoder_.end(), "'", file, "' line ", line, ": merge result '", a + b,
                         "' is not in the vocabulary");
    merges_.insert_or_assign(pair_key(ia->second, ib->second), Merge{rank, ij->second});  // last rank wins
  }

  void finish(const std::string& file) {
    const auto& a = detail::byte_alphabet();
    for (std::size_t b = 0; b < 256; ++b) {
      std::string c = unicode::to_utf8(std::u32string(1, a.to_char[b]));
      auto plain = encoder_.find(c), eow = encoder_.find(c + "</w>");
      require<FormatError>(plain != encoder_.end() && eow != encoder_.end(), "'", file,
                           "': the vocabulary lacks the byte token '", plain == encoder_.end() ? c : c + "</w>", "'");
      byte_token_[b] = plain->second;
      byte_token_eow_[b] = eow->second;
    }
    auto sot = encoder_.find("<|startoftext|>"), eot = encoder_.find("<|endoftext|>");
    require<FormatError>(sot != encoder_.end() && eot != encoder_.end(), "'", file, "': the vocabulary lacks '",
                         sot == encoder_.end() ? "<|startoftext|>" : "<|endoftext|>", "'");
    sot_ = sot->second;
    eot_ = eot->second;
    token_bytes_.assign(decoder_.size(), std::string());
    for (std::size_t id = 0; id < decoder_.size(); ++id) {
      for (char32_t c : unicode::decode_utf8(decoder_[id]))
        token_bytes_[id] += static_cast<char>(static_cast<unsigned char>(a.byte_of(c)));
    }
  }

  static std::u32string clean_u32(std::string_view text) {
    unicode::decode_utf8(text);  // validates, naming the offset of a bad byte
    std::u32string s = unicode::decode_utf8(unicode::nfc(text));
    s = unicode::html_unescape(unicode::html_unescape(s));
    auto strip = [](std::u32string_view v) {
      std::size_t b = 0, e = v.size();
      while (b < e && unicode::python_isspace(v[b])) ++b;
      while (e > b && unicode::python_isspace(v[e - 1])) --e;
      return v.substr(b, e - b);
    };
    std::u32string_view stripped = strip(s);
    std::u32string collapsed;
    collapsed.reserve(stripped.size());
    for (std::size_t i = 0; i < stripped.size();) {
      if (unicode::regex_space(stripped[i])) {
        collapsed += U' ';
        while (i < stripped.size() && unicode::regex_space(stripped[i])) ++i;
      } else {
        collapsed += stripped[i++];
      }
    }
    return unicode::python_lower(strip(collapsed));
  }

  /// The regex is compiled with IGNORECASE: its literal letters also match their case variants, and 's' also
  /// matches U+017F (long s), which lower() leaves in place.
  static bool literal_match(char32_t text, char pattern) {
    auto p = static_cast<char32_t>(pattern);
    if (text == p) return true;
    if (pattern >= 'a' && pattern <= 'z') return text == p - 32 || (pattern == 's' && text == 0x17F);
    return false;
  }
  static std::size_t match_literal(std::u32string_view s, std::size_t i, std::string_view literal) {
    if (s.size() - i < literal.size()) return 0;
    for (std::size_t k = 0; k < literal.size(); ++k)
      if (!literal_match(s[i + k], literal[k])) return 0;
    return literal.size();
  }

  /// Calls `emit` with every match of the pre-tokenizer regex, left to right; unmatched characters (whitespace)
  /// are skipped as `re.findall` does.
  template <class Emit>
  static void for_each_piece(std::u32string_view s, Emit&& emit) {
    static constexpr std::string_view literals[] = {"<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re",
                                                     "'ve", "'m", "'ll", "'d"};
    for (std::size_t i = 0; i < s.size();) {
      std::size_t len = 0;
      for (std::string_view lit : literals) {
        if ((len = match_literal(s, i, lit)) > 0) break;
      }
      if (len == 0) {
        char32_t c = s[i];
        if (unicode::is_letter(c)) {
          len = 1;
          while (i + len < s.size() && unicode::is_letter(s[i + len])) ++len;
        } else if (unicode::is_number(c)) {
          len = 1;
        } else if (!unicode::regex_space(c)) {
          len = 1;
          while (i + len < s.size()) {
            char32_t d = s[i + len];
            if (unicode::regex_space(d) || unicode::is_letter(d) || unicode::is_number(d)) break;
            ++len;
          }
        }
      }
      if (len == 0) {
        ++i;
        continue;
      }
      emit(s.substr(i, len));
      i += len;
    }
  }

  /// BPE of one piece (UTF-8 bytes), appending its ids. Pieces are cached.
  void bpe(const std::string& piece, std::vector<std::int32_t>& ids) const {
    if (piece == "<|startoftext|>" || piece == "<|endoftext|>") {  // the reference's cache holds these two as is
      ids.push_back(piece[2] == 's' ? sot_ : eot_);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      auto it = state_->cache.find(piece);
      if (it != state_->cache.end()) {
        ids.insert(ids.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<std::int32_t> word = merge_word(piece);
    ids.insert(ids.end(), word.begin(), word.end());
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (state_->cache.size() >= cache_limit) state_->cache.clear();  // bounded memory on endless distinct words
    state_->cache.emplace(piece, std::move(word));
  }

  /// The reference merges, while any adjacent pair has a rank, every occurrence of the lowest-ranked pair from
  /// left to right in one pass. Here a heap orders (rank, position); one pass takes every entry of the lowest rank
  /// and queues the pairs it creates only after the pass, so any merge table gives the reference's result.
  std::vector<std::int32_t> merge_word(const std::string& piece) const {
    struct Symbol {
      std::int32_t id;
      int prev, next;
    };
    struct Candidate {
      std::int32_t rank;
      int left;
      std::int32_t left_id, right_id, merged;
      bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::vector<Symbol> sym(piece.size());
    for (std::size_t k = 0; k < piece.size(); ++k) {
      auto b = static_cast<unsigned char>(piece[k]);
      sym[k] = {k + 1 == piece.size() ? byte_token_eow_[b] : byte_token_[b], static_cast<int>(k) - 1,
                k + 1 == piece.size() ? -1 : static_cast<int>(k) + 1};
    }
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    std::vector<Candidate> created;
    auto consider = [&](int left, std::vector<Candidate>* sink) {
      if (left < 0 || sym[static_cast<std::size_t>(left)].next < 0) return;
      const Symbol& l = sym[static_cast<std::size_t>(left)];
      const Symbol& r = sym[static_cast<std::size_t>(l.next)];
      auto it = merges_.find(pair_key(l.id, r.id));
      if (it == merges_.end()) return;
      Candidate c{it->second.rank, left, l.id, r.id, it->second.merged};
      if (sink != nullptr)
        sink->push_back(c);
      else
        heap.push(c);
    };
    for (int k = 0; k + 1 < static_cast<int>(sym.size()); ++k) consider(k, nullptr);
    std::vector<bool> alive(sym.size(), true);
    while (!heap.empty()) {
      std::int32_t rank = heap.top().rank;
      created.clear();
      while (!heap.empty() && heap.top().rank == rank) {
        Candidate c = heap.top();
        heap.pop();
        auto li = static_cast<std::size_t>(c.left);
        if (!alive[li] || sym[li].id != c.left_id || sym[li].next < 0) continue;
        auto ri = static_cast<std::size_t>(sym[li].next);
        if (sym[ri].id != c.right_id) continue;
        sym[li].id = c.merged;
        sym[li].next = sym[ri].next;
        if (sym[ri].next >= 0) sym[static_cast<std::size_t>(sym[ri].next)].prev = c.left;
        alive[ri] = false;
        consider(sym[li].prev, &created);
        consider(c.left, &created);
      }
      for (const Candidate& c : created) heap.push(c);
    }
    std::vector<std::int32_t> out;
    for (int k = 0; k >= 0 && !sym.empty(); k = sym[static_cast<std::size_t>(k)].next)
      out.push_back(sym[static_cast<std::size_t>(k)].id);
    return out;
  }

  void warn_truncation(std::size_t row, std::size_t total, index_t context_length) const {
    if (state_->warned.exchange(true)) return;
    if (state_->warn)
      state_->warn(froster::detail::concat("text ", row, " has ", total, " tokens with the start and end tokens; cut ",
                                           "to the context length ", context_length,
                                           " keeping the end token last (further truncations are not reported)"));
  }

  struct Merge {
    std::int32_t rank;
    std::int32_t merged;
  };

  std::unordered_map<std::string, std::int32_t> encoder_;
  std::vector<std::string> decoder_;      // id -> token in the byte alphabet (UTF-8)
  std::vector<bool> present_;             // ids that name a token
  std::vector<std::string> token_bytes_;  // id -> the bytes the token stands for
  std::unordered_map<std::uint64_t, Merge> merges_;
  std::array<std::int32_t, 256> byte_token_{};
  std::array<std::int32_t, 256> byte_token_eow_{};
  std::int32_t sot_ = 0, eot_ = 0;
  std::unique_ptr<State> state_;
};

}  // namespace froster::io
