// Image decoding, PIL-exact bicubic resize and CLIP preprocessing against fixtures written by PIL
// (tests/reference/make_image_fixtures.py), and hostile files that must fail with FormatError.

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <zlib.h>

#include <froster/io/image.hpp>

#include "support/fixtures.hpp"
#include "support/tolerance.hpp"

namespace {

using froster::FormatError;
using froster::index_t;
using froster::io::Image;

std::string data_path(const std::string& file) { return std::string(FROSTER_TEST_DATA_DIR) + "/" + file; }

std::vector<std::byte> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

// Binary PPM (P6, maxval 255) as PIL writes it: "P6\n<w> <h>\n255\n" then the RGB bytes.
Image read_ppm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::string magic;
  int w = 0, h = 0, maxval = 0;
  in >> magic >> w >> h >> maxval;
  REQUIRE(magic == "P6");
  REQUIRE(maxval == 255);
  in.get();  // the single whitespace byte after maxval
  Image img(w, h);
  in.read(reinterpret_cast<char*>(img.pixels.data()), static_cast<std::streamsize>(img.pixels.size()));
  REQUIRE(in.gcount() == static_cast<std::streamsize>(img.pixels.size()));
  return img;
}

struct Case {
  std::string kind, source, expected, file;
  int w = 0, h = 0;
};

std::vector<Case> cases(const std::string& kind) {
  std::ifstream in(data_path("image_cases.txt"));
  REQUIRE(in.good());
  std::vector<Case> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    Case c;
    fields >> c.kind >> c.source;
    if (c.kind != kind) continue;
    if (kind.rfind("resize", 0) == 0) fields >> c.w >> c.h;
    if (kind == "preprocess") fields >> c.w >> c.file;
    fields >> c.expected;
    REQUIRE(!fields.fail());
    out.push_back(c);
  }
  REQUIRE(!out.empty());
  return out;
}

// Exact equality, reporting the first differing pixel and how many bytes differ.
void require_same_pixels(const Image& actual, const Image& expected) {
  REQUIRE(actual.width == expected.width);
  REQUIRE(actual.height == expected.height);
  std::size_t differing = 0, first = 0;
  for (std::size_t i = 0; i < expected.pixels.size(); ++i)
    if (actual.pixels[i] != expected.pixels[i] && differing++ == 0) first = i;
  if (differing != 0) {
    const std::size_t px = first / 3;
    INFO(differing << " bytes differ; first at x=" << px % std::size_t(expected.width)
                   << " y=" << px / std::size_t(expected.width) << " channel " << first % 3 << ": actual "
                   << int(actual.pixels[first]) << ", expected " << int(expected.pixels[first]));
    CHECK(differing == 0);
  }
}

// Decoding must either succeed or throw FormatError; anything else (another exception, a crash under the
// sanitizers) fails the test.
bool decodes_or_format_error(std::span<const std::byte> bytes, const std::string& name) {
  try {
    (void)froster::io::decode_image(bytes, name);
    return true;
  } catch (const FormatError&) {
    return false;
  }
}

std::vector<std::byte> png_chunk(const char* type, const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> typed(type, type + 4);
  typed.insert(typed.end(), data.begin(), data.end());
  const auto crc = static_cast<std::uint32_t>(crc32(0, typed.data(), static_cast<uInt>(typed.size())));
  std::vector<std::byte> out;
  auto put32 = [&](std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(std::byte(v >> s));
  };
  put32(static_cast<std::uint32_t>(data.size()));
  for (auto b : typed) out.push_back(std::byte(b));
  put32(crc);
  return out;
}

// A PNG whose IHDR claims `w` x `h` 8-bit RGB pixels, followed by a tiny IDAT and IEND.
std::vector<std::byte> png_with_size(std::uint32_t w, std::uint32_t h) {
  const std::uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  std::vector<std::byte> out(8);
  std::memcpy(out.data(), sig, 8);
  std::vector<std::uint8_t> ihdr = {std::uint8_t(w >> 24), std::uint8_t(w >> 16), std::uint8_t(w >> 8),
                                    std::uint8_t(w),       std::uint8_t(h >> 24), std::uint8_t(h >> 16),
                                    std::uint8_t(h >> 8),  std::uint8_t(h),       8, 2, 0, 0, 0};
  const std::vector<std::uint8_t> empty_zlib = {0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01};
  for (const auto& chunk : {png_chunk("IHDR", ihdr), png_chunk("IDAT", empty_zlib), png_chunk("IEND", {})})
    out.insert(out.end(), chunk.begin(), chunk.end());
  return out;
}

}  // namespace

TEST_CASE("decode_image matches PIL's convert(\"RGB\") for every PNG and JPEG fixture", "[io][image]") {
  for (const Case& c : cases("decode")) {
    INFO("source " << c.source);
    const Image actual = froster::io::decode_image(data_path(c.source));
    require_same_pixels(actual, read_ppm(data_path(c.expected)));
    // The in-memory overload sees the same bytes; the format comes from the magic bytes, not the name.
    const auto bytes = read_bytes(data_path(c.source));
    require_same_pixels(froster::io::decode_image(bytes, "no_extension"), actual);
  }
}

TEST_CASE("resize_bicubic matches Pillow's Image.resize(size, BICUBIC) bit for bit", "[io][image]") {
  for (const Case& c : cases("resize")) {
    INFO("source " << c.source << " -> " << c.w << "x" << c.h);
    const Image src = froster::io::decode_image(data_path(c.source));
    require_same_pixels(froster::io::resize_bicubic(src, c.w, c.h), read_ppm(data_path(c.expected)));
  }
}

TEST_CASE("resize_bicubic with PassOrder::horizontal_first matches Pillow <= 12", "[io][image]") {
  for (const Case& c : cases("resize_horizontal_first")) {
    INFO("source " << c.source << " -> " << c.w << "x" << c.h);
    const Image src = froster::io::decode_image(data_path(c.source));
    const Image expected = read_ppm(data_path(c.expected));
    require_same_pixels(froster::io::resize_bicubic(src, c.w, c.h, froster::io::PassOrder::horizontal_first),
                        expected);
    // These sizes were chosen where Pillow 13's order gives other pixels, so the option is not a no-op.
    CHECK(froster::io::resize_bicubic(src, c.w, c.h).pixels != expected.pixels);
  }
}

TEST_CASE("ClipPreprocess matches the torchvision transform of OpenAI CLIP in every PIL mode", "[io][image]") {
  std::map<std::string, froster::test::Fixture> fixtures;
  int differing_from_rgb = 0;
  for (const Case& c : cases("preprocess")) {
    INFO("source " << c.source << " at n_px " << c.w);
    if (fixtures.count(c.file) == 0) fixtures.emplace(c.file, froster::test::Fixture(data_path(c.file)));
    const auto expected = fixtures.at(c.file).f32(c.expected);
    REQUIRE(expected.extents() == froster::Dims({3, c.w, c.w}));
    const froster::Dims flat{3 * index_t(c.w) * c.w};
    const std::size_t bytes = sizeof(float) * std::size_t(flat[0]);
    const froster::io::ClipPreprocess pre{c.w};

    // In the mode PIL opened the file in (RGBA premultiplied, P nearest, I;16 in 16 bits, CMYK, ...).
    const froster::io::SourceImage src = froster::io::decode_source(data_path(c.source));
    const froster::Tensor<float> out = pre(src);
    FROSTER_REQUIRE_CLOSE(out.view().reshaped(flat), expected.reshaped(flat), froster::test::tol::pytorch_fp32);
    // Same operations in the same order as torch in fp32: the values are in fact identical.
    CHECK(std::memcmp(out.data(), expected.data(), bytes) == 0);

    // RGB and gray sources give the same from the decoded RGB image; the other modes differ (that is why the
    // reference has to be followed in the source mode).
    const froster::io::Image rgb = froster::io::to_rgb(src);
    const bool same_from_rgb = std::memcmp(pre(rgb).data(), expected.data(), bytes) == 0;
    if (src.mode == froster::io::PilMode::rgb || src.mode == froster::io::PilMode::l) CHECK(same_from_rgb);
    else differing_from_rgb += same_from_rgb ? 0 : 1;

    // Slice i of a batch, through strided views, gets the same values and leaves the other slices alone.
    auto batch = froster::Tensor<float>::host_zeros({3, 3, c.w, c.w});
    pre(src, batch.view(), 1);
    CHECK(std::memcmp(batch.data() + flat[0], expected.data(), bytes) == 0);
    bool others_zero = true;
    for (index_t i = 0; i < flat[0]; ++i)
      others_zero = others_zero && batch.data()[i] == 0.0f && batch.data()[2 * flat[0] + i] == 0.0f;
    CHECK(others_zero);
  }
  INFO(differing_from_rgb << " non-RGB preprocess cases differ when converted to RGB before resizing");
  CHECK(differing_from_rgb >= 10);
}

TEST_CASE("clip_resize_size and center_crop follow torchvision's rules", "[io][image]") {
  using froster::io::clip_resize_size;
  // int(n * long / short) truncates; the shorter side (width on ties) becomes n.
  CHECK(clip_resize_size(37, 23, 24) == std::array<int, 2>{38, 24});
  CHECK(clip_resize_size(23, 61, 24) == std::array<int, 2>{24, 63});
  CHECK(clip_resize_size(640, 480, 224) == std::array<int, 2>{298, 224});
  CHECK(clip_resize_size(50, 50, 7) == std::array<int, 2>{7, 7});
  CHECK_THROWS_AS(clip_resize_size(0, 5, 3), froster::ValueError);

  // Offsets round halves to even (Python's round): a 6-wide image cropped to 1 starts at round(2.5) = 2,
  // an 8-wide one at round(3.5) = 4.
  Image row6(6, 1), row8(8, 1);
  for (int x = 0; x < 6; ++x) row6.at(0, x, 0) = std::uint8_t(x + 1);
  for (int x = 0; x < 8; ++x) row8.at(0, x, 0) = std::uint8_t(x + 1);
  CHECK(froster::io::center_crop(row6, 1, 1).at(0, 0, 0) == 3);
  CHECK(froster::io::center_crop(row8, 1, 1).at(0, 0, 0) == 5);
  // A smaller image is padded with black, (c - s) // 2 before: 2 wide into 5 puts the pixels at columns 1 and 2.
  Image two(2, 1);
  two.at(0, 0, 1) = 10;
  two.at(0, 1, 1) = 20;
  const Image padded = froster::io::center_crop(two, 5, 1);
  CHECK(padded.at(0, 0, 1) == 0);
  CHECK(padded.at(0, 1, 1) == 10);
  CHECK(padded.at(0, 2, 1) == 20);
  CHECK(padded.at(0, 3, 1) == 0);
}

TEST_CASE("ClipPreprocess rejects wrong output shapes and empty images", "[io][image]") {
  const froster::io::ClipPreprocess pre{8};
  const Image img(5, 4);
  auto wrong = froster::Tensor<float>::host({3, 8, 7});
  CHECK_THROWS_AS(pre(img, wrong.view()), froster::ShapeError);
  auto batch = froster::Tensor<float>::host({2, 3, 8, 8});
  CHECK_THROWS_AS(pre(img, batch.view(), 2), froster::ShapeError);
  CHECK_THROWS_AS(pre(Image()), froster::ValueError);
  CHECK_THROWS_AS(froster::io::resize_bicubic(img, 0, 3), froster::ValueError);
}

TEST_CASE("decode_image rejects unknown formats, garbage and missing files", "[io][image]") {
  const std::vector<std::byte> empty;
  CHECK_THROWS_AS(froster::io::decode_image(empty, "empty"), FormatError);
  std::vector<std::byte> gif(16, std::byte{0});
  std::memcpy(gif.data(), "GIF89a", 6);
  CHECK_THROWS_AS(froster::io::decode_image(gif, "x.png"), FormatError);
  // A right signature followed by garbage.
  std::mt19937 gen(7);
  for (const char* kind : {"png", "jpeg"}) {
    for (int trial = 0; trial < 50; ++trial) {
      std::vector<std::byte> bytes(std::size_t(16 + trial * 13));
      for (auto& b : bytes) b = std::byte(gen() & 0xFF);
      if (std::string(kind) == "png") {
        const std::uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
        std::memcpy(bytes.data(), sig, 8);
      } else {
        bytes[0] = std::byte{0xFF}, bytes[1] = std::byte{0xD8}, bytes[2] = std::byte{0xFF};
      }
      INFO(kind << " garbage trial " << trial);
      CHECK_THROWS_AS(froster::io::decode_image(bytes, "garbage"), FormatError);
    }
  }
  CHECK_THROWS_AS(froster::io::decode_image(data_path("image_no_such_file.png")), froster::IoError);
}

TEST_CASE("truncated image files throw FormatError at every cut", "[io][image]") {
  for (const Case& c : cases("decode")) {
    const auto bytes = read_bytes(data_path(c.source));
    // Every cut for small files, about 300 evenly spaced cuts otherwise. A PNG may lose its trailing chunks
    // after the image data (IEND, 12 bytes) and still decode, as in PIL; everything shorter must fail.
    const bool png = froster::io::detect_image_format(bytes) == froster::io::ImageFormat::png;
    const std::size_t must_fail_below = png ? bytes.size() - 12 : bytes.size();
    const std::size_t step = std::max<std::size_t>(1, bytes.size() / 300);
    for (std::size_t cut = 0; cut < bytes.size(); cut += (cut + step < must_fail_below ? step : 1)) {
      INFO(c.source << " cut to " << cut << " of " << bytes.size() << " bytes");
      const std::span<const std::byte> part(bytes.data(), cut);
      if (cut < must_fail_below) CHECK_THROWS_AS(froster::io::decode_image(part, c.source), FormatError);
      else CHECK_NOTHROW(decodes_or_format_error(part, c.source));
    }
  }
}

TEST_CASE("corrupted image files decode or throw FormatError, never crash", "[io][image]") {
  std::mt19937 gen(1234);
  for (const Case& c : cases("decode")) {
    const auto original = read_bytes(data_path(c.source));
    for (int trial = 0; trial < 40; ++trial) {
      auto bytes = original;
      const int flips = 1 + int(gen() % 8);
      for (int f = 0; f < flips; ++f) bytes[gen() % bytes.size()] = std::byte(gen() & 0xFF);
      INFO(c.source << " corruption trial " << trial);
      CHECK_NOTHROW(decodes_or_format_error(bytes, c.source));
    }
  }
}

TEST_CASE("image headers claiming huge sizes are rejected before allocation", "[io][image]") {
  // Beyond libpng's user limit (the side cap) and beyond the pixel cap.
  CHECK_THROWS_AS(froster::io::decode_image(png_with_size(100000, 10), "wide.png"), FormatError);
  CHECK_THROWS_AS(froster::io::decode_image(png_with_size(0, 10), "empty.png"), FormatError);
  froster::io::ImageLimits tight;
  tight.max_pixels = 1000;
  CHECK_THROWS_AS(froster::io::decode_image(png_with_size(100, 100), "pixels.png", tight), FormatError);
  // Within the caps, but far more than a file of this size can hold: rejected without allocating 768 MiB.
  CHECK_THROWS_AS(froster::io::decode_image(png_with_size(16384, 16384), "bomb.png"), FormatError);

  // JPEG: patch the SOF0 size fields of a real file to 60000 x 60000 (over the side cap) and to 16000 x 16000
  // (within the caps, but a file of a kilobyte cannot hold that many pixels).
  auto jpeg = read_bytes(data_path("image_src_jpeg420_37x23.jpg"));
  std::size_t sof = 0;
  for (std::size_t i = 2; i + 9 < jpeg.size(); ++i)
    if (jpeg[i] == std::byte{0xFF} && jpeg[i + 1] == std::byte{0xC0}) {
      sof = i;
      break;
    }
  REQUIRE(sof != 0);
  auto set_size = [&](std::uint16_t w, std::uint16_t h) {
    auto patched = jpeg;
    patched[sof + 5] = std::byte(h >> 8), patched[sof + 6] = std::byte(h & 0xFF);
    patched[sof + 7] = std::byte(w >> 8), patched[sof + 8] = std::byte(w & 0xFF);
    return patched;
  };
  CHECK_THROWS_AS(froster::io::decode_image(set_size(60000, 60000), "huge.jpg"), FormatError);
  CHECK_THROWS_AS(froster::io::decode_image(set_size(16000, 16000), "bomb.jpg"), FormatError);
  CHECK(froster::io::decode_image(set_size(37, 23), "same.jpg").width == 37);
  tight.max_pixels = 500;
  CHECK_THROWS_AS(froster::io::decode_image(set_size(37, 23), "same.jpg", tight), FormatError);
}
