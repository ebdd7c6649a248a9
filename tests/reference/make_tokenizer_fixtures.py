#!/usr/bin/env python3
"""Golden data for froster::io::ClipTokenizer (tests/io/test_tokenizer.cpp), and the generated HTML5 entity table.

Writes, into tests/reference/data/:
  tokenizer_golden.json  ids from OpenAI's CLIP tokenizer algorithm (ftfy + regex, as clip/simple_tokenizer.py does)
                         on the shared vocabulary ../shared/data/bpe_simple_vocab_16e6.txt.gz, for a few hundred
                         strings; strings where ftfy.fix_text changes the ids (it does more than NFC) are listed
                         apart, with the ids the same pipeline gives when ftfy is replaced by NFC.
  tokenizer_hf/vocab.json, tokenizer_hf/merges.txt
                         a small Hugging Face-format CLIP vocabulary (the 512 byte tokens, the first 500 merges,
                         the two special tokens)
  tokenizer_hf_golden.json
                         ids from transformers' CLIPTokenizer on that small vocabulary, kept only where OpenAI's
                         algorithm on the same merges agrees.
  tokenizer_unicode.json the whitespace sets of Python's str.isspace and of the `regex` module's \\s, so the test
                         can check ours.
and, with --entities, include/froster/io/html_entities.hpp from Python's html.entities.html5 and html's tables.

Needs: ftfy, regex, transformers (with tokenizers). Running the tests never needs Python.
Usage: python3 tests/reference/make_tokenizer_fixtures.py [--vocab PATH] [--entities]
"""

import argparse
import gzip
import html
import html.entities
import json
import os
import random
import sys
import tempfile
import unicodedata

import ftfy
import regex

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(HERE, "data")
DEFAULT_VOCAB = os.path.join(ROOT, "..", "shared", "data", "bpe_simple_vocab_16e6.txt.gz")

PATTERN = (r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+")


# ----------------------------------------------------------------------------------------------------------------
# The reference: OpenAI's CLIP tokenizer algorithm (clip/simple_tokenizer.py), written out here so the fixtures do
# not depend on the `clip` package. `fix` is the first cleaning step: ftfy.fix_text in the reference.
# ----------------------------------------------------------------------------------------------------------------

def byte_alphabet():
    """Byte -> printable character: printable Latin-1 bytes map to themselves, the rest to 256 + n in byte order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    table = {}
    extra = 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


class ReferenceTokenizer:
    def __init__(self, merges, fix=ftfy.fix_text):
        self.fix = fix
        self.byte_encoder = byte_alphabet()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        alphabet = [self.byte_encoder[b] for b in range(256)]
        vocab = alphabet + [c + "</w>" for c in alphabet] + ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = {tok: i for i, tok in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        self.pattern = regex.compile(PATTERN, regex.IGNORECASE)

    def clean(self, text):
        text = self.fix(text)
        text = html.unescape(html.unescape(text)).strip()
        text = regex.sub(r"\s+", " ", text).strip()
        return text.lower()

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == best[0] and word[i + 1] == best[1]:
                    merged.append(best[0] + best[1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        out = " ".join(word)
        self.cache[token] = out
        return out

    def encode(self, text):
        ids = []
        for piece in self.pattern.findall(self.clean(text)):
            chars = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(chars).split(" "))
        return ids

    def tokenize(self, text, context_length=77):
        """clip.tokenize with truncate=True for one text."""
        sot, eot = self.encoder["<|startoftext|>"], self.encoder["<|endoftext|>"]
        tokens = [sot] + self.encode(text) + [eot]
        if len(tokens) > context_length:
            tokens = tokens[:context_length]
            tokens[-1] = eot
        return tokens + [0] * (context_length - len(tokens))

    def decode(self, ids):
        decoder = {v: k for k, v in self.encoder.items()}
        text = "".join(decoder[i] for i in ids)
        return bytearray(self.byte_decoder[c] for c in text).decode("utf-8", errors="replace").replace("</w>", " ")


def read_merges(path):
    lines = gzip.open(path).read().decode("utf-8").split("\n")
    return [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]


def nfc(text):
    return unicodedata.normalize("NFC", text)


# ----------------------------------------------------------------------------------------------------------------
# The strings
# ----------------------------------------------------------------------------------------------------------------

KINETICS = [
    "abseiling", "air drumming", "answering questions", "applauding", "applying cream", "archery",
    "arm wrestling", "arranging flowers", "assembling computer", "auctioning", "baby waking up", "baking cookies",
    "balloon blowing", "bandaging", "barbequing", "bartending", "beatboxing", "bee keeping", "belly dancing",
    "bench pressing", "bending back", "biking through snow", "blasting sand", "blowing glass", "blowing leaves",
    "blowing out candles", "bobsledding", "bookbinding", "bouncing on trampoline", "braiding hair",
    "breading or breadcrumbing", "breakdancing", "brushing teeth", "bungee jumping", "canoeing or kayaking",
    "capoeira", "carving pumpkin", "catching or throwing baseball", "cheerleading", "playing didgeridoo",
    "tying knot (not on a tie)", "dancing ballet", "riding mule", "shooting goal (soccer)",
    "skiing (not slalom or crosscountry)", "trimming or shaving beard", "using remote controller (not gaming)",
    "passing American football (in game)", "petting animal (not cat)", "playing ice hockey", "making a sandwich",
    "Tai chi", "yoga", "zumba", "jumpstyle dancing", "spray painting", "sign language interpreting",
]
TEMPLATES = ["a photo of a {}.", "a video of a person {}.", "a example of a person practicing {}.",
             "{}", "A demonstration of {}!"]

BASIC = [
    # empty and blank
    "", " ", "   ", "\t\n\r ", "a",
    # punctuation
    "Hello, world!", "what?!...", "(parenthesis) [brackets] {braces}", "a--b", "$100.00", "50% off!!!",
    "#hashtag @user", "e-mail: foo@bar.com", "C++ & C#", "http://example.com/path?q=1&r=2",
    "~`!@#$%^&*()_+-=[]{}|;':\",./<>?", "...", "a.b.c", "«quoted»", "¿Qué?", "¡Hola!", "—", "a — b", "…",
    "•bullet", "§1.2", "100°C", "±5", "x²+y²", "→ ← ↑", "a/b\\c", "'''", "\"", "''s", "'sun", "'",
    # special tokens and look-alikes
    "<|startoftext|>", "<|endoftext|>", "a photo<|endoftext|>of", "!<|endoftext|>!", "<|STARTOFTEXT|>",
    "<|EndOfText|> x", "<|startoftext|", "<|endoftext", "</w>", "hello</w>world", "<|ſtartoftext|>",
    "<|endoftext|><|endoftext|>",
    # numbers
    "123", "3.14159", "1,000,000", "2023-01-01", "0x1F", "007", "١٢٣", "Ⅻ", "½", "², ³", "①②", "𝟙𝟚", "१२३",
    "12th", "4k", "v1.2.3", "-42", "1e10",
    # apostrophes
    "it's", "don't", "they're", "we've", "I'm", "you'll", "he'd", "IT'S", "DON'T", "'s", "'t", "'re", "'ve",
    "'m", "'ll", "'d", "rock'n'roll", "o'clock", "'ll'll", "'S'T'RE'VE'M'LL'D", "dogs' toys", "'sa 'ta 'rex",
    "l'homme", "'ſ", "the ſhip's", "ain't y'all",
    "don’t", "it‘s", "they‛re", "ʼs", "“quoted”", "„low“",
    # accents, composed and decomposed
    "café", "cafe\u0301", "naïve", "nai\u0308ve", "Ångström", "A\u030angstro\u0308m", "São Paulo", "Zürich",
    "façade", "crème brûlée", "Dvořák", "Łódź", "Ἀθῆναι", "e\u0301&#769;", "a\u0301\u0302\u0303",
    "\u0301leading mark", "x\u0338", "ǅ", "ﬁsh", "Ĳssel", "Việt Nam", "Ñandú", "Ærøskøbing", "ß", "œuvre",
    # mixed case, including non-ASCII
    "HeLLo WoRLD", "ÉCOLE", "STRASSE", "Straße", "ẞ", "İstanbul", "I", "Kelvin \u212a", "ΣΊΣΥΦΟΣ", "ΟΔΟΣ",
    "Σ", "ΑΣ", "ΑΣ.", "ΑΣ'Α", "ΑΣ\u0301", "ΑΣ\u0301Β", "ΑΣΑ", "Σ Σ", "ΑΣ ΒΣ", "ΠΡΟΣΟΧΗ!", "ДОБРЫЙ ДЕНЬ",
    "ÀÉÎÕÜ", "ǄǅǆǇǈǉ", "ΆΈΉ", "ԱՐԱՐԱՏ", "ႠႡ", "ᏣᎳᎩ",
    # CJK and other scripts
    "日本語のテキスト", "中文测试", "한국어", "東京タワー", "ＡＢＣ１２３", "東京　タワー", "ｶﾀｶﾅ", "漢字かなカナ",
    "สวัสดี", "नमस्ते", "مرحبا بالعالم", "שלום", "Привет, мир!", "Γειά σου Κόσμε", "ሰላም", "ᚠᚢᚦ",
    "𠀀𠀁", "我爱北京天安门", "一二三",
    # emoji
    "😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "I ❤ NY", "🇫🇷", "🤷‍♀️", "hello😀world", "😀😀😀",
    "👋🏻👋🏼👋🏽👋🏾👋🏿", "🧑‍💻 coding", "©®™", "☺", "⚽️ goal", "🔥🔥 fire", "a🍕b", "🐱‍👤",
    # HTML entities, double escaped too
    "&amp;", "Tom &amp; Jerry", "&amp;amp;", "&amp;amp;amp;", "&lt;b&gt;bold&lt;/b&gt;", "&quot;quoted&quot;",
    "&#39;s", "&#x27;t", "&#8217;", "&#0;", "&#128;", "&#x80;", "&#x9F;", "&#xD800;", "&#1114112;",
    "&#99999999999999999999;", "&#x110000;", "&#1;", "&#11;", "&#x7f;", "&#xFDD0;", "&#xFFFE;", "&#x10FFFF;",
    "&nbsp;", "a&nbspb", "&ampx", "&amplifier;", "&notit;", "&notin;", "&copy2023", "&AElig", "&AElig;",
    "&unknown;", "& alone", "&&", "&#", "&#x;", "&#65", "&#x41g", "&Aacute;&aacute;",
    "&NotNestedGreaterGreater;", "&fjlig;", "&#13;x", "a&#10;b", "&#x2028;x", "&#9;tab", "&amp;lt;p&amp;gt;",
    "&AMP;", "&Amp;", "&LT;3", "&gt&lt", "&eacute;t&eacute;", "e&#x301;", "&#x1F600;", "&#128512;",
    "&amp;#39;s", "&amp;quot;", "&ccedil;a va", "5 &lt; 6 &amp;&amp; 7 &gt; 3", "&#x00041;", "&#0065;",
    "&" + "a" * 40 + ";", "&lt" + "x" * 35, "&#x" + "0" * 30 + "41;", "&#" + "0" * 40 + "65;",
    "fish &amp chips", "&copy;&reg;&trade;", "&frac12;", "&sup2;", "&Sigma;&sigma;&sigmaf;", "&ETH;&eth;",
    "&#x130;", "&#304;stanbul", "&Idot;", "&ohm;", "&angst;",
    # odd whitespace
    "  leading and trailing  ", "tab\tseparated", "new\nline", "a\u00a0b", "a\u2028b", "a\u2029b", "a\u200bb",
    "a\u3000b", "a\u1680b", "\u001cfile sep\u001c", "a\u001cb", "a\u001fb", "a\u0085b", "a\r\nb", "\ufeffBOM",
    "a\u00adb", "a \u200d b", "a\u202fb", "a\u205fb", "a\u2009\u200ab", "\u00a0\u00a0x\u00a0\u00a0",
    "a\u000bb\u000cc", "a\u180eb", "a\u2060b", "\u001c", "x\u001d \u001e", "a\x00b", "a\x07b", "\x1b[31mred\x1b[0m",
    "a\u0080b", "a\u0093b", "a\u00a0\u00a0 \t b",
    # over-long text (more than 77 tokens)
    "a photo of " * 30, "supercalifragilisticexpialidocious" * 5, "1234567890" * 10,
    "the quick brown fox jumps over the lazy dog. " * 8, "😀" * 80, "!" * 200, "a b " * 60,
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et "
    "dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex "
    "ea commodo consequat.",
    "x" * 1000,
]


def random_strings(count, seed=20240214):
    """Random mixtures of the interesting pieces above, for coverage of the regex and the BPE."""
    pool = ["a", "b", "the", "photo", "Photo", " ", "  ", "\t", "'s", "'ll", "'", "’", "!", "?", ".", ",", "-",
            "1", "23", "é", "e\u0301", "ñ", "Σ", "ς", "İ", "日本", "한", "😀", "👍🏽", "‍", "&amp;", "&lt;", "&#39;",
            "&nbsp;", "&amp;amp;", "\u00a0", "\u2028", "\u200b", "<|endoftext|>", "ß", "Æ", "\u0301", "ſ", "K",
            "x²", "½", "٣", "(", ")", "@", "#", "$", "%", "^", "*", "<", ">", "|", "~", "`", "\u001c", "ƒ"]
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        out.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 14))))
    return out


def all_strings():
    strings = list(BASIC)
    strings += [t.format(k) for t in TEMPLATES for k in KINETICS]
    strings += random_strings(70)
    seen, unique = set(), []
    for s in strings:
        if s not in seen:
            seen.add(s)
            unique.append(s)
    return unique


# ----------------------------------------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------------------------------------

def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=True, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes)")


def make_golden(vocab_path):
    merges = read_merges(vocab_path)
    ref = ReferenceTokenizer(merges)
    nfc_ref = ReferenceTokenizer(merges, fix=nfc)
    cases, differences = [], []
    for s in all_strings():
        ids = ref.encode(s)
        nfc_ids = nfc_ref.encode(s)
        if ids == nfc_ids:
            cases.append({"text": s, "clean": nfc_ref.clean(s), "ids": ids})
        else:
            differences.append({"text": s, "ftfy": ftfy.fix_text(s), "reference_ids": ids,
                                "clean": nfc_ref.clean(s), "nfc_ids": nfc_ids})
    long_texts = [c["text"] for c in cases if len(c["ids"]) + 2 > 77][:6] + ["a photo of a dog.", ""]
    tokenize = [{"text": s, "context_length": n, "ids": ref.tokenize(s, n)}
                for s in long_texts for n in (77, 16)]
    decode = [{"ids": c["ids"], "text": ref.decode(c["ids"])} for c in cases[:400:7]]
    # Ids that decode to broken UTF-8: a lone continuation byte, a truncated 4-byte sequence, an overlong form.
    raw = [[ref.encoder[ref.byte_encoder[b]] for b in seq] for seq in ([0x80], [0xF0, 0x9F, 0x98], [0xC0, 0xAF],
                                                                      [0x61, 0xED, 0xA0, 0x80, 0x62], [0xFF, 0x41])]
    decode += [{"ids": ids, "text": ref.decode(ids)} for ids in raw]
    print(f"{len(cases)} golden strings, {len(differences)} where ftfy changes the ids")
    write_json(os.path.join(DATA, "tokenizer_golden.json"),
               {"vocab": "bpe_simple_vocab_16e6.txt.gz", "sot": ref.encoder["<|startoftext|>"],
                "eot": ref.encoder["<|endoftext|>"], "vocab_size": len(ref.encoder), "cases": cases,
                "ftfy_differences": differences, "tokenize": tokenize, "decode": decode})


def make_hf(vocab_path, merge_count=500):
    from transformers import CLIPTokenizer

    merges = read_merges(vocab_path)[:merge_count]
    alphabet = [byte_alphabet()[b] for b in range(256)]
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    out_dir = os.path.join(DATA, "tokenizer_hf")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for m in merges:
            f.write(" ".join(m) + "\n")
    for name in ("vocab.json", "merges.txt"):
        print(f"wrote tests/reference/data/tokenizer_hf/{name} ({os.path.getsize(os.path.join(out_dir, name))} bytes)")

    hf = CLIPTokenizer.from_pretrained(out_dir)
    ref = ReferenceTokenizer(merges)
    cases, skipped = [], 0
    strings = ["a photo of a dog.", "Hello, World!", "it's the cat's toy", "they're here", "café", "naïve",
               "the quick brown fox jumps over the lazy dog", "1234", "x²", "日本語", "😀👍🏽", "ΟΔΟΣ",
               "supercalifragilisticexpialidocious", "a\tb\nc", "<|endoftext|>", "playing ice hockey",
               "(not on a tie)", "İstanbul", "'ll 'd 'm", "&amp;"]
    for s in strings:
        ids = ref.encode(s)
        hf_ids = hf(s, add_special_tokens=False)["input_ids"]
        if ids == hf_ids:
            cases.append({"text": s, "ids": ids})
        else:
            skipped += 1
            print(f"  HF and OpenAI disagree on {s!r}: {hf_ids} vs {ids} (left out)")
    print(f"{len(cases)} HF golden strings, {skipped} left out")
    write_json(os.path.join(DATA, "tokenizer_hf_golden.json"),
               {"sot": vocab["<|startoftext|>"], "eot": vocab["<|endoftext|>"], "vocab_size": len(vocab),
                "cases": cases})


def make_unicode():
    points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    write_json(os.path.join(DATA, "tokenizer_unicode.json"), {
        "python_isspace": [c for c in points if chr(c).isspace()],
        "regex_s": [c for c in points if regex.match(r"\s", chr(c))],
        "python_lower_multi": {str(c): [ord(x) for x in chr(c).lower()] for c in points
                               if len(chr(c).lower()) != 1},
        "unicodedata_version": unicodedata.unidata_version,
    })


def c_octal(text):
    return "".join(f"\\{b:03o}" for b in text.encode("utf-8"))


def make_entities():
    table = html.entities.html5
    names = sorted({k[:-1] for k in table if k.endswith(";")}, key=lambda k: k.encode())
    legacy = {k for k in table if not k.endswith(";")}
    assert all(table[k] == table[k + ";"] for k in legacy)
    lines = [
        "#pragma once",
        "/// @file",
        "/// The HTML5 named character references as Python's html.unescape knows them (html.entities.html5), and",
        "/// Python's replacements for invalid numeric references (html._invalid_charrefs, html._invalid_codepoints).",
        f"/// Generated by tests/reference/make_tokenizer_fixtures.py --entities (Python {sys.version.split()[0]});",
        "/// do not edit.",
        "",
        "#include <array>",
        "#include <cstdint>",
        "#include <string_view>",
        "",
        "namespace froster::io::detail {",
        "",
        "struct HtmlEntity {",
        "  std::string_view name;   // without the ';', sorted by bytes",
        "  std::string_view value;  // UTF-8",
        "  bool legacy;             // also recognised without the ';' (and as a prefix of a longer name)",
        "};",
        "",
        f"inline constexpr std::array<HtmlEntity, {len(names)}> html_entities{{{{",
    ]
    for k in names:
        lines.append(f'    {{"{k}", "{c_octal(table[k + ";"])}", {"true" if k in legacy else "false"}}},')
    lines += ["}};", ""]
    charrefs = sorted(html._invalid_charrefs.items())
    lines.append(f"/// Numeric references HTML5 replaces (0x80-0x9F as windows-1252, 0 and CR): code point -> text.")
    lines.append("struct HtmlCharref {")
    lines.append("  std::uint32_t code;")
    lines.append("  std::uint32_t replacement;")
    lines.append("};")
    lines.append(f"inline constexpr std::array<HtmlCharref, {len(charrefs)}> html_invalid_charrefs{{{{")
    for code, rep in charrefs:
        assert len(rep) == 1
        lines.append(f"    {{0x{code:X}, 0x{ord(rep):X}}},")
    lines += ["}};", ""]
    lines.append("/// Code points a numeric reference may not produce: Python's html.unescape drops them.")
    lines.append("inline constexpr bool html_invalid_codepoint(std::uint32_t c) {")
    invalid = set(html._invalid_codepoints)
    expected = set(range(0x1, 0x9)) | set(range(0xE, 0x20)) | set(range(0x7F, 0xA0)) | \
        set(range(0xFDD0, 0xFDF0)) | {0xB} | {p * 0x10000 + 0xFFFE for p in range(17)} | \
        {p * 0x10000 + 0xFFFF for p in range(17)}
    assert invalid == expected, "html._invalid_codepoints changed: update the generator"
    lines.append("  return (c >= 0x1 && c <= 0x8) || c == 0xB || (c >= 0xE && c <= 0x1F) || (c >= 0x7F && c <= 0x9F) ||")
    lines.append("         (c >= 0xFDD0 && c <= 0xFDEF) || ((c & 0xFFFEu) == 0xFFFEu && c <= 0x10FFFF);")
    lines.append("}")
    lines += ["", "}  // namespace froster::io::detail", ""]
    path = os.path.join(ROOT, "include", "froster", "io", "html_entities.hpp")
    with open(path, "w", encoding="ascii") as f:
        f.write("\n".join(lines))
    print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes, {len(names)} entities)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab", default=DEFAULT_VOCAB, help="bpe_simple_vocab_16e6.txt.gz")
    parser.add_argument("--entities", action="store_true", help="also write include/froster/io/html_entities.hpp")
    args = parser.parse_args()
    if args.entities:
        make_entities()
    make_unicode()
    make_golden(args.vocab)
    make_hf(args.vocab)


if __name__ == "__main__":
    main()
