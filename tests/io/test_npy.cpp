// .npy writing: the header as NumPy's format 1.0 specifies it (magic, version, little-endian header length, a dict
// padded to a multiple of 64 bytes ending in a newline) and the values in C order from any strides.

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <froster/io/npy.hpp>

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("save_npy writes NumPy format 1.0 in C order from strided views", "[io][npy]") {
  const float values[6] = {1, 2, 3, 4, 5, 6};
  const std::string path = "froster_test_npy.npy";
  // The transpose of a [2, 3] matrix: C order of the view is 1 4 2 5 3 6.
  froster::io::save_npy(path, froster::ConstView<float>(values, {3, 2}, {1, 3}));
  const std::string bytes = read_all(path);
  std::remove(path.c_str());
  REQUIRE(bytes.size() > 10);
  CHECK(bytes.substr(0, 6) == "\x93NUMPY");
  CHECK(bytes[6] == 1);
  CHECK(bytes[7] == 0);
  const std::size_t header_len = std::size_t(std::uint8_t(bytes[8])) | std::size_t(std::uint8_t(bytes[9])) << 8;
  REQUIRE((10 + header_len) % 64 == 0);
  const std::string dict = bytes.substr(10, header_len);
  CHECK(dict.find("'descr': '<f4'") != std::string::npos);
  CHECK(dict.find("'fortran_order': False") != std::string::npos);
  CHECK(dict.find("'shape': (3, 2)") != std::string::npos);
  CHECK(dict.back() == '\n');
  REQUIRE(bytes.size() == 10 + header_len + 6 * sizeof(float));
  std::vector<float> data(6);
  std::memcpy(data.data(), bytes.data() + 10 + header_len, 6 * sizeof(float));
  CHECK(data == std::vector<float>{1, 4, 2, 5, 3, 6});

  CHECK(froster::io::npy_header({7}).find("'shape': (7,)") != std::string::npos);
  CHECK_THROWS_AS(froster::io::save_npy("/nonexistent-dir/x.npy", froster::ConstView<float>(values, {6})),
                  froster::IoError);
}
