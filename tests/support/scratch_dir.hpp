#pragma once
// A scratch directory for the files a test writes, unique to the process (CTest runs test cases in parallel
// processes) and removed with everything in it when the object goes.

#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace froster::test {

struct ScratchDir {
  std::filesystem::path path;

  explicit ScratchDir(const std::string& prefix)
      : path(std::filesystem::temp_directory_path() / (prefix + "_" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace froster::test
