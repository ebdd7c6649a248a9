#pragma once
/// @file
/// Text primitives with Python's semantics, for the CLIP tokenizer: strict UTF-8 decoding, decoding with
/// replacement (`bytes.decode('utf-8', errors='replace')`), `str.isspace`, the `regex` module's `\s`, `str.lower`
/// (full lowercase mapping with Final_Sigma), Unicode NFC and `html.unescape`. Character properties come from
/// utf8proc (Unicode 15 in utf8proc 2.8); see docs/io_tokenizer.md for where they differ from Python's.

#include <utf8proc.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "froster/core/error.hpp"
#include "froster/io/html_entities.hpp"

namespace froster::io::unicode {

inline constexpr char32_t replacement_char = 0xFFFD;

/// Appends the UTF-8 encoding of `c` (a valid scalar value) to `out`.
inline void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

inline std::string to_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) append_utf8(out, c);
  return out;
}

namespace detail {

/// Length of the well-formed UTF-8 sequence at `s[i]` (1-4), or, when it is ill-formed, minus the length of its
/// maximal subpart (at least 1): the Unicode "maximal subpart" rule that Python's decoder follows.
inline int utf8_sequence(std::string_view s, std::size_t i, char32_t& code) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b0 = byte(i);
  if (b0 < 0x80) {
    code = b0;
    return 1;
  }
  int length;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
    code = b0 & 0x1Fu;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    code = b0 & 0x0Fu;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    code = b0 & 0x07u;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return -1;
  }
  for (int k = 1; k < length; ++k) {
    if (i + static_cast<std::size_t>(k) >= s.size()) return -k;
    unsigned char b = byte(i + static_cast<std::size_t>(k));
    unsigned char min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
    if (b < min || b > max) return -k;
    code = (code << 6) | (b & 0x3Fu);
  }
  return length;
}

}  // namespace detail

/// Decodes UTF-8; throws ValueError naming the byte offset of the first ill-formed sequence.
inline std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    char32_t c = 0;
    int n = detail::utf8_sequence(s, i, c);
    require<ValueError>(n > 0, "text is not valid UTF-8: ill-formed sequence at byte ", i);
    out += c;
    i += static_cast<std::size_t>(n);
  }
  return out;
}

/// `bytes.decode('utf-8', errors='replace')`: each maximal ill-formed subpart becomes one U+FFFD.
inline std::string decode_utf8_replace(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    char32_t c = 0;
    int n = detail::utf8_sequence(s, i, c);
    if (n > 0) {
      out.append(s.substr(i, static_cast<std::size_t>(n)));
      i += static_cast<std::size_t>(n);
    } else {
      append_utf8(out, replacement_char);
      i += static_cast<std::size_t>(-n);
    }
  }
  return out;
}

/// Python's `str.isspace()` (bidirectional class WS, B or S, or category Zs): what `str.strip()` removes.
inline constexpr bool python_isspace(char32_t c) {
  return (c >= 0x9 && c <= 0xD) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/// The `regex` module's `\s` on str patterns: `str.isspace()` without the separators U+001C-U+001F.
inline constexpr bool regex_space(char32_t c) { return python_isspace(c) && !(c >= 0x1C && c <= 0x1F); }

inline utf8proc_category_t category(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

/// `\p{L}`: categories Lu, Ll, Lt, Lm, Lo.
inline bool is_letter(char32_t c) {
  auto k = category(c);
  return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}

/// `\p{N}`: categories Nd, Nl, No.
inline bool is_number(char32_t c) {
  auto k = category(c);
  return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
}

namespace detail {

/// Code points with Other_Lowercase or Other_Uppercase (so Cased) that have no case mapping and are not Lu/Ll/Lt:
/// from the `regex` module's \p{Cased}, Unicode 14 subset.
inline constexpr char32_t other_cased[][2] = {
    {0xAA, 0xAA},       {0xBA, 0xBA},       {0x295, 0x295},     {0x2B0, 0x2B8},     {0x2C0, 0x2C1},
    {0x2E0, 0x2E4},     {0x37A, 0x37A},     {0x10FC, 0x10FC},   {0x1D2C, 0x1D6A},   {0x1D78, 0x1D78},
    {0x1D9B, 0x1DBF},   {0x2071, 0x2071},   {0x207F, 0x207F},   {0x2090, 0x209C},   {0x2C7C, 0x2C7D},
    {0xA69C, 0xA69D},   {0xA770, 0xA770},   {0xA7F2, 0xA7F4},   {0xA7F8, 0xA7F9},   {0xAB5C, 0xAB5F},
    {0xAB69, 0xAB69},   {0x10780, 0x10780}, {0x10783, 0x10785}, {0x10787, 0x107B0}, {0x107B2, 0x107BA},
    {0x1F130, 0x1F149}, {0x1F150, 0x1F169}, {0x1F170, 0x1F189},
};

/// Unicode's Cased property: Lu, Ll, Lt, anything with a case mapping, and Other_Lowercase/Other_Uppercase.
inline bool is_cased(char32_t c) {
  auto k = category(c);
  if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT) return true;
  auto ci = static_cast<utf8proc_int32_t>(c);
  if (utf8proc_tolower(ci) != ci || utf8proc_toupper(ci) != ci) return true;
  for (const auto& r : other_cased)
    if (c >= r[0] && c <= r[1]) return true;
  return false;
}

/// Unicode's Case_Ignorable property: Mn, Me, Cf, Lm, Sk, and Word_Break MidLetter, MidNumLet, Single_Quote.
inline bool is_case_ignorable(char32_t c) {
  switch (c) {
    case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4: case 0x2018: case 0x2019:
    case 0x2024: case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
      return true;
    default:
      break;
  }
  auto k = category(c);
  return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
         k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK;
}

/// Python's choice for U+03A3 at `i`: final sigma (U+03C2) when a cased letter precedes it and none follows it,
/// case-ignorable characters skipped on both sides.
inline char32_t lower_sigma(std::u32string_view s, std::size_t i) {
  std::size_t j = i;
  while (j > 0 && is_case_ignorable(s[j - 1])) --j;
  if (j == 0 || !is_cased(s[j - 1])) return 0x3C3;
  std::size_t k = i + 1;
  while (k < s.size() && is_case_ignorable(s[k])) ++k;
  return k < s.size() && is_cased(s[k]) ? char32_t{0x3C3} : char32_t{0x3C2};
}

}  // namespace detail

/// Python's `str.lower()`: the simple lowercase mapping, except U+0130 (-> "i" U+0307, its full mapping) and
/// U+03A3 in the Final_Sigma context (-> U+03C2).
inline std::u32string python_lower(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char32_t c = s[i];
    if (c == 0x130) {
      out += U'i';
      out += char32_t{0x307};
    } else if (c == 0x3A3) {
      out += detail::lower_sigma(s, i);
    } else {
      out += static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
    }
  }
  return out;
}

/// Unicode NFC of valid UTF-8 (utf8proc's canonical decomposition and composition; embedded NULs are kept).
inline std::string nfc(std::string_view utf8) {
  utf8proc_uint8_t* out = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(utf8.data()),
                                    static_cast<utf8proc_ssize_t>(utf8.size()), &out,
                                    static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(out, &std::free);
  require<ValueError>(n >= 0, "cannot normalise text to NFC: ", utf8proc_errmsg(n));
  return std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
}

namespace detail {

using froster::io::detail::html_entities;
using froster::io::detail::html_invalid_charrefs;
using froster::io::detail::html_invalid_codepoint;
using froster::io::detail::HtmlEntity;

inline bool ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
inline bool ascii_hex(char32_t c) { return ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
inline std::uint32_t hex_value(char32_t c) {
  return ascii_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : c - 'A' + 10;
}

/// What a numeric reference to `code` becomes (`overflow`: the number was larger than any code point).
inline void append_charref(std::u32string& out, std::uint64_t code, bool overflow) {
  if (!overflow) {
    for (const auto& r : html_invalid_charrefs) {
      if (r.code == code) {
        out += static_cast<char32_t>(r.replacement);
        return;
      }
    }
  }
  if (overflow || (code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF) {
    out += replacement_char;
    return;
  }
  if (html_invalid_codepoint(static_cast<std::uint32_t>(code))) return;  // Python drops these
  out += static_cast<char32_t>(code);
}

inline const HtmlEntity* find_entity(std::string_view name) {
  auto it = std::lower_bound(html_entities.begin(), html_entities.end(), name,
                             [](const HtmlEntity& e, std::string_view n) { return e.name < n; });
  return it != html_entities.end() && it->name == name ? &*it : nullptr;
}

/// Parses the reference starting after the '&' at `s[i]`; on a match appends its text and returns the index after
/// it, otherwise returns `i` (the '&' is then kept as it is).
inline std::size_t unescape_one(std::u32string_view s, std::size_t i, std::u32string& out) {
  std::size_t p = i + 1;
  if (p < s.size() && s[p] == '#') {
    // '#' digits ';'?  or  '#' [xX] hexdigits ';'?
    std::size_t q = p + 1;
    bool hex = q < s.size() && (s[q] == 'x' || s[q] == 'X');
    if (hex) ++q;
    std::size_t first = q;
    std::uint64_t code = 0;
    bool overflow = false;
    while (q < s.size() && (hex ? ascii_hex(s[q]) : ascii_digit(s[q]))) {
      std::uint32_t d = hex ? hex_value(s[q]) : static_cast<std::uint32_t>(s[q] - '0');
      code = code * (hex ? 16 : 10) + d;
      if (code > 0x10FFFF) overflow = true, code = 0x110000;  // saturate: any such number gives U+FFFD
      ++q;
    }
    if (q == first) return i;  // "&#" or "&#x" without digits is not a reference
    if (q < s.size() && s[q] == ';') ++q;
    append_charref(out, code, overflow);
    return q;
  }
  // Named: up to 32 characters other than \t \n \f space < & # ;, then an optional ';'.
  std::size_t q = p;
  while (q < s.size() && q - p < 32) {
    char32_t c = s[q];
    if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' || c == ';') break;
    ++q;
  }
  if (q == p) return i;
  bool semicolon = q < s.size() && s[q] == ';';
  std::size_t end = semicolon ? q + 1 : q;
  // Entity names are ASCII; a name with other characters can still match through an ASCII prefix.
  std::string name;
  for (std::size_t k = p; k < q && s[k] < 0x80; ++k) name += static_cast<char>(s[k]);
  bool ascii = name.size() == q - p;
  if (ascii) {
    if (const HtmlEntity* e = find_entity(name); e != nullptr && (semicolon || e->legacy)) {
      out += decode_utf8(e->value);
      return end;
    }
  }
  // The longest legacy name (without ';') that is a proper prefix of the match, at least 2 characters long.
  std::size_t whole = q - p + (semicolon ? 1 : 0);
  for (std::size_t len = std::min(whole - 1, name.size()); len >= 2; --len) {
    if (const HtmlEntity* e = find_entity(std::string_view(name).substr(0, len)); e != nullptr && e->legacy) {
      out += decode_utf8(e->value);
      out.append(s.substr(p + len, end - (p + len)));
      return end;
    }
  }
  out += U'&';
  out.append(s.substr(p, end - p));
  return end;
}

}  // namespace detail

/// Python's `html.unescape`: named references of HTML5 (with ';', and the legacy ones without it, also as the
/// longest prefix of a longer name), decimal and hexadecimal references with HTML5's replacements.
inline std::u32string html_unescape(std::u32string_view s) {
  if (s.find(U'&') == std::u32string_view::npos) return std::u32string(s);
  std::u32string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    if (s[i] != U'&') {
      out += s[i++];
      continue;
    }
    std::size_t next = detail::unescape_one(s, i, out);
    if (next == i) {
      out += U'&';
      ++i;
    } else {
      i = next;
    }
  }
  return out;
}

}  // namespace froster::io::unicode
