// libFuzzer harness for the restricted unpickler (froster/io/pickle.hpp) and the torch checkpoint reader on top
// of it (tensor sizes, strides and offsets checked against storages; state dict selection; TorchScript walk).
// Each input is unpickled with unknown globals rejected and with placeholders, then loaded as the data.pkl of an
// archive whose storages "0".."3" hold 64, 2, 16 and 0 bytes, and of a TorchScript-like archive; inputs starting with "PK" are also read as whole
// archives. Any exception other than froster::FormatError, any crash or sanitizer report is a finding.
//
// Build and run (from the repository root):
//   clang++-14 -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
//     -Iinclude tests/fuzz/fuzz_pickle.cpp -o /tmp/fuzz_pickle -lz
//   mkdir -p /tmp/pickle_corpus && /tmp/fuzz_pickle -max_len=4096 -max_total_time=480 -timeout=10 \
//     -rss_limit_mb=2048 /tmp/pickle_corpus tests/fuzz/corpus/pickle
// (a libFuzzer dictionary of torch globals and opcode pairs, -dict=FILE, speeds up discovery; see the report
// that added this harness / tests/fuzz/README.md)
//   /tmp/fuzz_pickle -merge=1 tests/fuzz/corpus/pickle /tmp/pickle_corpus   # keep new coverage, minimized
// The corpus is replayed by tests/io/test_torch_checkpoint.cpp ("pickle fuzz corpus replays without crashing").

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "froster/io/pickle.hpp"
#include "froster/io/torch_checkpoint.hpp"
#include "froster/io/zip.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace froster::io;
  const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  for (auto policy : {pickle::UnknownGlobals::reject, pickle::UnknownGlobals::opaque}) {
    pickle::Options o;
    o.unknown_globals = policy;
    o.limits.max_nodes = 1 << 16;  // small caps keep each run fast; the caps themselves are what is tested
    o.limits.max_items = 1 << 18;
    try {
      (void)pickle::load(input, "fuzz", o);
    } catch (const froster::FormatError&) {
    }
  }
  std::vector<std::byte> storage(64);
  for (std::size_t i = 0; i < storage.size(); ++i) storage[i] = static_cast<std::byte>(i * 37 + 11);
  const std::span<const std::byte> s(storage);
  const auto zip = write_stored_zip({{"a/data.pkl", input}, {"a/data/0", s}, {"a/data/1", s.first(2)},
                                     {"a/data/2", s.first(16)}, {"a/data/3", s.first(0)}});
  TorchLoadOptions options;
  options.limits.max_nodes = 1 << 16;
  options.limits.max_items = 1 << 18;
  try {
    (void)read_torch_checkpoint(std::span<const std::byte>(zip), "fuzz.pt", options);
  } catch (const froster::FormatError&) {
  }
  // The same pickle as a TorchScript archive (constants.pkl present): module objects are walked instead.
  const auto jit = write_stored_zip({{"a/data.pkl", input}, {"a/constants.pkl", s.first(0)}, {"a/data/0", s},
                                     {"a/data/1", s.first(2)}});
  try {
    (void)read_torch_checkpoint(std::span<const std::byte>(jit), "fuzz_jit.pt", options);
  } catch (const froster::FormatError&) {
  }
  if (size >= 2 && data[0] == 'P' && data[1] == 'K') {
    try {
      (void)read_torch_checkpoint(input, "fuzz_zip.pt", options);
    } catch (const froster::FormatError&) {
    }
  }
  return 0;
}
