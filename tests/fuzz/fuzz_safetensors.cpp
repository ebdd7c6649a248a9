// libFuzzer harness for the safetensors reader (froster/io/safetensors.hpp).
//
// Each input is parsed twice:
//   1. verbatim, as a whole file (the 8-byte length field as written);
//   2. with the length field recomputed, so that mutations of the JSON keep a consistent header: bytes 6..7 of the
//      input (the top of the length field, 0 in real files) give the size of the data region at the end, and the
//      header is everything between byte 8 and the data. Seeds for this mode store that size there.
// froster::Error is the only exception allowed. A file that parses is saved back as F32 and parsed again, and must
// give the same names, extents, values (bitwise) and metadata: any difference aborts. Any crash, sanitizer report,
// uncaught exception or abort is a finding.
//
// Build and run: see tests/fuzz/README.md. The corpus is replayed by tests/io/test_safetensors.cpp.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "froster/io/safetensors.hpp"

namespace {

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "fuzz_safetensors: %s\n", what);
  std::abort();
}

void round_trip(const froster::io::SafetensorsFile& f) {
  std::vector<std::byte> again;
  try {
    again = froster::io::serialize_safetensors(f.tensors, f.metadata);
  } catch (const froster::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    finding("a parsed file cannot be saved");
  }
  const auto g = froster::io::parse_safetensors(std::span<const std::byte>(again), "re-saved");
  if (g.metadata != f.metadata) finding("metadata changed in the round trip");
  if (g.tensors.size() != f.tensors.size()) finding("tensor count changed in the round trip");
  for (const auto& e : f.tensors) {
    if (!g.tensors.contains(e.name)) finding("a tensor was lost in the round trip");
    const auto& t = g.tensors.at(e.name);
    if (!(t.extents() == e.tensor.extents())) finding("extents changed in the round trip");
    const auto n = static_cast<std::size_t>(e.tensor.extents().product());
    if (n > 0 && std::memcmp(t.data(), e.tensor.data(), n * sizeof(float)) != 0)
      finding("values changed in the round trip");
  }
}

void try_parse(std::span<const std::byte> bytes) {
  froster::io::SafetensorsFile f;
  try {
    f = froster::io::parse_safetensors(bytes, "fuzz.safetensors");
  } catch (const froster::Error&) {
    return;
  }
  round_trip(f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  try_parse(input);
  if (size >= 8) {
    std::size_t data_len = std::size_t(data[6]) | std::size_t(data[7]) << 8;
    if (data_len > size - 8) data_len = size - 8;
    std::vector<std::byte> fixed(input.begin(), input.end());
    const std::uint64_t n = size - 8 - data_len;
    std::memcpy(fixed.data(), &n, 8);
    try_parse(fixed);
  }
  return 0;
}
