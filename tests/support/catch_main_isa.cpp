// Catch2 main of the CPU-backend tests. `--froster-isa=NAME` runs the suite at that instruction-set level by
// setting FROSTER_ISA (which CpuBackend reads); when this CPU lacks the level, the run exits with 77, CTest's
// SKIP_RETURN_CODE, so the level shows as skipped rather than passed.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <froster/backends/cpu/isa.hpp>

int main(int argc, char** argv) {
  std::vector<char*> args;
  std::string isa;
  bool listing = false;
  for (int i = 0; i < argc; ++i) {
    constexpr const char* flag = "--froster-isa=";
    if (std::strncmp(argv[i], flag, std::strlen(flag)) == 0) {
      isa = argv[i] + std::strlen(flag);
      continue;
    }
    if (std::strncmp(argv[i], "--list", 6) == 0) listing = true;
    args.push_back(argv[i]);
  }
  if (!isa.empty()) {
    setenv("FROSTER_ISA", isa.c_str(), 1);
    if (!listing) {
      try {
        froster::cpu::default_isa();
      } catch (const froster::Error& e) {
        std::cout << "SKIPPED: " << e.what() << '\n';
        return 77;
      }
    }
  }
  return Catch::Session().run(int(args.size()), args.data());
}
