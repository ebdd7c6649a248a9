#pragma once
/// @file
/// Decoding PNG and JPEG files the way PIL does (libpng and libjpeg-turbo underneath): `decode_source` gives the
/// image in the mode and samples PIL's `Image.open` holds, `decode_image` the 8-bit RGB pixels of
/// `Image.open(path).convert("RGB")`. The format is recognised by its magic
/// bytes, never by the file name. Errors: IoError when the file cannot be read, FormatError (naming the file) for
/// anything else wrong with the content: unknown format, corrupt or truncated data, unsupported variants, and sides
/// or pixel counts beyond `ImageLimits` (decompression bombs). libpng and libjpeg report errors through
/// setjmp/longjmp; the jumps land in small frames that hold only trivially destructible objects, and the C++
/// exception is thrown after the jump. See docs/io_images.md for the exact conversions.

#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "froster/core/error.hpp"
#include "froster/io/mapped_file.hpp"
#include "froster/io/resize.hpp"

namespace froster::io {

/// Caps checked against a file's header before any pixel memory is allocated.
struct ImageLimits {
  int max_side = 1 << 14;                     ///< widest or tallest image accepted
  std::int64_t max_pixels = std::int64_t(1) << 28;  ///< width * height accepted
  int max_jpeg_scans = 1000;                  ///< progressive JPEGs with more scans are rejected (CPU bomb)
};

enum class ImageFormat { unknown, png, jpeg };

/// The format named by the first bytes of `bytes` (PNG signature, or JPEG's SOI marker FF D8 FF).
inline ImageFormat detect_image_format(std::span<const std::byte> bytes) {
  static constexpr unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), png_sig, 8) == 0) return ImageFormat::png;
  if (bytes.size() >= 3 && bytes[0] == std::byte{0xFF} && bytes[1] == std::byte{0xD8} && bytes[2] == std::byte{0xFF})
    return ImageFormat::jpeg;
  return ImageFormat::unknown;
}

namespace detail {

inline void check_image_size(std::uint64_t width, std::uint64_t height, const ImageLimits& limits,
                             const std::string& name) {
  require<FormatError>(width > 0 && height > 0, "'", name, "': image header gives an empty size ", width, "x",
                       height);
  require<FormatError>(width <= std::uint64_t(limits.max_side) && height <= std::uint64_t(limits.max_side), "'",
                       name, "': image of ", width, "x", height, " pixels exceeds the limit of ", limits.max_side,
                       " pixels per side");
  require<FormatError>(width * height <= std::uint64_t(limits.max_pixels), "'", name, "': image of ", width, "x",
                       height, " pixels exceeds the limit of ", limits.max_pixels, " pixels");
}

// ---------------------------------------------------------------------------------------------------------- PNG

// Everything libpng's callbacks touch. Trivially destructible: it lives across setjmp/longjmp.
struct PngState {
  const unsigned char* data = nullptr;
  std::size_t size = 0;
  std::size_t pos = 0;
  char message[256] = {};
};

inline void png_read_callback(png_structp png, png_bytep out, png_size_t length) {
  auto* s = static_cast<PngState*>(png_get_io_ptr(png));
  if (length > s->size - s->pos) png_error(png, "unexpected end of file");
  std::memcpy(out, s->data + s->pos, length);
  s->pos += length;
}

inline void png_error_callback(png_structp png, png_const_charp message) {
  auto* s = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(s->message, sizeof s->message, "%s", message);
  png_longjmp(png, 1);
}

inline void png_warning_callback(png_structp, png_const_charp) {}  // PIL ignores what libpng warns about

struct PngHeader {
  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  std::size_t row_bytes = 0;
};

// Phase 1: signature, chunks up to the image data, IHDR; set up unpacking of sub-byte samples. Returns false after
// a libpng error (the message is in the state). Only trivially destructible objects in this frame.
inline bool png_read_header_phase(png_structp png, png_infop info, int max_side, PngHeader* h) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_user_limits(png, png_uint_32(max_side), png_uint_32(max_side));
  png_read_info(png, info);
  png_get_IHDR(png, info, &h->width, &h->height, &h->bit_depth, &h->color_type, &h->interlace, nullptr, nullptr);
  if (h->bit_depth < 8) png_set_packing(png);  // one sample per byte, values unscaled
  if (h->interlace != PNG_INTERLACE_NONE) png_set_interlace_handling(png);
  png_read_update_info(png, info);
  h->row_bytes = png_get_rowbytes(png, info);
  return true;
}

// Phase 2: all rows (every interlace pass). Same rules as phase 1.
inline bool png_read_rows_phase(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  return true;
}

// Owns libpng's structures from the C++ side (never crossed by a longjmp).
struct PngHandle {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngHandle() {
    if (png != nullptr) png_destroy_read_struct(&png, info != nullptr ? &info : nullptr, nullptr);
  }
};

inline SourceImage decode_png(std::span<const std::byte> bytes, const std::string& name,
                              const ImageLimits& limits) {
  PngState state;
  state.data = reinterpret_cast<const unsigned char*>(bytes.data());
  state.size = bytes.size();
  PngHandle h;
  h.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, png_error_callback, png_warning_callback);
  require<FormatError>(h.png != nullptr, "'", name, "': cannot initialise libpng");
  h.info = png_create_info_struct(h.png);
  require<FormatError>(h.info != nullptr, "'", name, "': cannot initialise libpng");
  png_set_read_fn(h.png, &state, png_read_callback);

  PngHeader hdr;
  if (!png_read_header_phase(h.png, h.info, limits.max_side, &hdr))
    throw FormatError(froster::detail::concat("'", name, "': invalid PNG (", state.message, ") near byte ", state.pos));
  check_image_size(hdr.width, hdr.height, limits, name);
  const int channels = hdr.color_type == PNG_COLOR_TYPE_GRAY         ? 1
                       : hdr.color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                       : hdr.color_type == PNG_COLOR_TYPE_RGB        ? 3
                       : hdr.color_type == PNG_COLOR_TYPE_RGB_ALPHA  ? 4
                       : hdr.color_type == PNG_COLOR_TYPE_PALETTE    ? 1
                                                                     : 0;
  require<FormatError>(channels > 0, "'", name, "': unsupported PNG colour type ", hdr.color_type);
  const std::size_t sample_bytes = hdr.bit_depth == 16 ? 2 : 1;
  require<FormatError>(hdr.row_bytes == std::size_t(hdr.width) * std::size_t(channels) * sample_bytes, "'", name,
                       "': unexpected PNG row size ", hdr.row_bytes);
  // Deflate cannot compress better than about 1032:1, so a small file claiming a huge image is lying: reject it
  // before allocating (a decompression bomb would otherwise cost the full allocation before failing).
  const std::uint64_t packed_row =
      (std::uint64_t(hdr.width) * std::uint64_t(channels) * std::uint64_t(hdr.bit_depth) + 7) / 8;
  require<FormatError>(std::uint64_t(hdr.height) * (packed_row + 1) <= std::uint64_t(bytes.size()) * 1100 + 65536,
                       "'", name, "': PNG header claims ", hdr.width, "x", hdr.height, " pixels, more than ",
                       bytes.size(), " bytes can hold");

  std::vector<unsigned char> raw(hdr.row_bytes * hdr.height);
  std::vector<png_bytep> rows(hdr.height);
  for (std::size_t y = 0; y < hdr.height; ++y) rows[y] = raw.data() + y * hdr.row_bytes;
  if (!png_read_rows_phase(h.png, rows.data()))
    throw FormatError(froster::detail::concat("'", name, "': corrupt or truncated PNG image data (", state.message,
                                     ") near byte ", state.pos));

  // The samples as PIL's PNG plugin unpacks them: sub-byte gray scaled to 0..255 (1-bit as mode "1"), 16-bit
  // samples keep their high byte except 16-bit gray, which PIL keeps whole (mode I;16).
  SourceImage out;
  out.width = static_cast<int>(hdr.width);
  out.height = static_cast<int>(hdr.height);
  const std::size_t n = std::size_t(hdr.width) * std::size_t(hdr.height);
  switch (hdr.color_type) {
    case PNG_COLOR_TYPE_PALETTE: out.mode = PilMode::p; break;
    case PNG_COLOR_TYPE_GRAY:
      out.mode = hdr.bit_depth == 16 ? PilMode::i16 : hdr.bit_depth == 1 ? PilMode::bilevel : PilMode::l;
      break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: out.mode = PilMode::la; break;
    case PNG_COLOR_TYPE_RGB: out.mode = PilMode::rgb; break;
    default: out.mode = PilMode::rgba; break;
  }
  if (out.mode == PilMode::p) {
    png_colorp palette = nullptr;
    int entries = 0;
    if (png_get_PLTE(h.png, h.info, &palette, &entries) == PNG_INFO_PLTE && palette != nullptr)
      for (int i = 0; i < entries && i < 256; ++i) {
        out.palette[std::size_t(3 * i + 0)] = palette[i].red;
        out.palette[std::size_t(3 * i + 1)] = palette[i].green;
        out.palette[std::size_t(3 * i + 2)] = palette[i].blue;
      }
  }
  if (out.mode == PilMode::i16) {
    out.samples16.resize(n);
    for (std::size_t i = 0; i < n; ++i) out.samples16[i] = std::uint16_t(raw[2 * i] << 8 | raw[2 * i + 1]);
    return out;
  }
  const int gray_scale = hdr.color_type == PNG_COLOR_TYPE_PALETTE ? 1
                         : hdr.bit_depth == 1                     ? 255
                         : hdr.bit_depth == 2                     ? 85
                         : hdr.bit_depth == 4                     ? 17
                                                                  : 1;
  const std::size_t samples = n * std::size_t(channels);
  out.samples.resize(samples);
  for (std::size_t i = 0; i < samples; ++i)
    out.samples[i] = sample_bytes == 2 ? raw[2 * i] : std::uint8_t(raw[i] * gray_scale);
  return out;
}

// --------------------------------------------------------------------------------------------------------- JPEG

// libjpeg's error manager extended with the jump target. Trivially destructible, as is every object in the frames
// a longjmp crosses (libjpeg's own C frames and the phase functions below).
struct JpegError {
  jpeg_error_mgr pub;  // first member: libjpeg sees a jpeg_error_mgr*
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

struct JpegProgress {
  jpeg_progress_mgr pub;  // first member
  int max_scans;
};

inline void jpeg_error_exit_callback(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

inline void jpeg_output_message_callback(j_common_ptr) {}  // warnings are not printed (PIL ignores them too)

inline void jpeg_progress_callback(j_common_ptr cinfo) {
  if (cinfo->is_decompressor == 0) return;
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  auto* p = reinterpret_cast<JpegProgress*>(cinfo->progress);
  if (d->input_scan_number > p->max_scans) {
    auto* err = reinterpret_cast<JpegError*>(cinfo->err);
    std::snprintf(err->message, sizeof err->message, "more than %d progressive scans", p->max_scans);
    std::longjmp(err->jump, 1);
  }
}

// A memory source that fails at the end of the data (libjpeg's own jpeg_mem_src pads with a fake EOI marker and
// only warns, which would turn a truncated file into a grey-filled image; PIL reports the truncation).
inline void jpeg_init_source_callback(j_decompress_ptr) {}
inline boolean jpeg_fill_input_buffer_callback(j_decompress_ptr cinfo) {
  ERREXIT(cinfo, JERR_INPUT_EOF);
  return FALSE;
}
inline void jpeg_skip_input_callback(j_decompress_ptr cinfo, long count) {
  if (count <= 0) return;
  jpeg_source_mgr* src = cinfo->src;
  if (static_cast<unsigned long>(count) > src->bytes_in_buffer) ERREXIT(cinfo, JERR_INPUT_EOF);
  src->next_input_byte += count;
  src->bytes_in_buffer -= std::size_t(count);
}
inline void jpeg_term_source_callback(j_decompress_ptr) {}

struct JpegState {
  jpeg_decompress_struct cinfo;
  JpegError err;
  JpegProgress progress;
  jpeg_source_mgr src;
};

// Phase 1: create the decompressor and read the header. Returns false after a libjpeg error.
inline bool jpeg_header_phase(JpegState* s, const unsigned char* data, std::size_t size) {
  if (setjmp(s->err.jump)) return false;
  jpeg_create_decompress(&s->cinfo);
  s->cinfo.progress = &s->progress.pub;
  s->src.next_input_byte = data;
  s->src.bytes_in_buffer = size;
  s->src.init_source = jpeg_init_source_callback;
  s->src.fill_input_buffer = jpeg_fill_input_buffer_callback;
  s->src.skip_input_data = jpeg_skip_input_callback;
  s->src.resync_to_restart = jpeg_resync_to_restart;
  s->src.term_source = jpeg_term_source_callback;
  s->cinfo.src = &s->src;
  jpeg_read_header(&s->cinfo, TRUE);
  return true;
}

// Phase 2: decode every scanline into `out` (rows of `row_bytes`) and read to the EOI marker.
inline bool jpeg_decode_phase(JpegState* s, unsigned char* out, std::size_t row_bytes) {
  if (setjmp(s->err.jump)) return false;
  jpeg_start_decompress(&s->cinfo);
  while (s->cinfo.output_scanline < s->cinfo.output_height) {
    JSAMPROW row = out + std::size_t(s->cinfo.output_scanline) * row_bytes;
    jpeg_read_scanlines(&s->cinfo, &row, 1);
  }
  jpeg_finish_decompress(&s->cinfo);
  return true;
}

// Destroys the decompressor from the C++ side. jpeg_destroy on a never-created (zeroed) struct is a no-op.
struct JpegHandle {
  JpegState* s;
  ~JpegHandle() { jpeg_destroy_decompress(&s->cinfo); }
};

inline SourceImage decode_jpeg(std::span<const std::byte> bytes, const std::string& name,
                               const ImageLimits& limits) {
  auto state = std::make_unique<JpegState>();  // value-initialised: all zero
  JpegState* s = state.get();
  s->cinfo.err = jpeg_std_error(&s->err.pub);
  s->err.pub.error_exit = jpeg_error_exit_callback;
  s->err.pub.output_message = jpeg_output_message_callback;
  s->progress.pub.progress_monitor = jpeg_progress_callback;
  s->progress.max_scans = limits.max_jpeg_scans;
  JpegHandle handle{s};

  auto fail = [&](const char* what) {
    const std::size_t consumed = s->cinfo.src != nullptr ? bytes.size() - s->src.bytes_in_buffer : 0;
    return FormatError(froster::detail::concat("'", name, "': ", what, " (", s->err.message, ") near byte ", consumed));
  };
  if (!jpeg_header_phase(s, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()))
    throw fail("invalid JPEG header");
  check_image_size(s->cinfo.image_width, s->cinfo.image_height, limits, name);
  // Huffman-coded JPEG needs at least a bit or two per 8x8 block and component: even a flat grey image stays under
  // ~260 pixels per byte. A header claiming far more than the file can hold is a decompression bomb (libjpeg would
  // fill the missing data with grey after a mere warning): refuse it before allocating the output.
  const std::uint64_t claimed = std::uint64_t(s->cinfo.image_width) * s->cinfo.image_height;
  require<FormatError>(claimed <= std::uint64_t(bytes.size()) * 2048 + (std::uint64_t(1) << 22), "'", name,
                       "': JPEG header claims ", s->cinfo.image_width, "x", s->cinfo.image_height,
                       " pixels, more than ", bytes.size(), " bytes can hold");

  // PIL's modes: 1 component -> L, 3 -> RGB, 4 -> CMYK (assumed Adobe-inverted); libjpeg's default islow DCT and
  // fancy upsampling are what PIL uses.
  const int components = s->cinfo.num_components;
  if (components == 1) s->cinfo.out_color_space = JCS_GRAYSCALE;
  else if (components == 3) s->cinfo.out_color_space = JCS_RGB;
  else if (components == 4) s->cinfo.out_color_space = JCS_CMYK;
  else
    throw FormatError(froster::detail::concat("'", name, "': JPEG with ", components,
                                     " components is not supported (expected 1, 3 or 4)"));
  s->cinfo.dct_method = JDCT_ISLOW;
  s->cinfo.do_fancy_upsampling = TRUE;

  const std::size_t width = s->cinfo.image_width, height = s->cinfo.image_height;
  const std::size_t row_bytes = width * std::size_t(components);
  std::vector<unsigned char> raw(row_bytes * height);
  if (!jpeg_decode_phase(s, raw.data(), row_bytes)) throw fail("corrupt or truncated JPEG data");
  require<FormatError>(s->cinfo.output_width == width && s->cinfo.output_height == height &&
                           s->cinfo.output_components == components,
                       "'", name, "': libjpeg produced an unexpected output geometry");

  SourceImage out;
  out.width = static_cast<int>(width);
  out.height = static_cast<int>(height);
  out.mode = components == 1 ? PilMode::l : components == 3 ? PilMode::rgb : PilMode::cmyk;
  if (components == 4)  // PIL unpacks JPEG CMYK as "CMYK;I": Adobe's inverted samples
    for (auto& v : raw) v = static_cast<unsigned char>(255 - v);
  out.samples = std::move(raw);
  return out;
}

}  // namespace detail

/// Decodes a PNG or JPEG held in memory into PIL's representation (mode and samples as `Image.open` holds them);
/// `name` appears in error messages. Throws FormatError for anything that is not a valid, supported image within
/// `limits`.
inline SourceImage decode_source(std::span<const std::byte> bytes, const std::string& name,
                                 const ImageLimits& limits = {}) {
  switch (detect_image_format(bytes)) {
    case ImageFormat::png: return detail::decode_png(bytes, name, limits);
    case ImageFormat::jpeg: return detail::decode_jpeg(bytes, name, limits);
    case ImageFormat::unknown: break;
  }
  throw FormatError(froster::detail::concat("'", name, "': not a PNG or JPEG file (", bytes.size(),
                                            " bytes; expected the PNG signature 89 50 4E 47 0D 0A 1A 0A or JPEG's"
                                            " FF D8 FF at byte 0)"));
}

/// Reads and decodes the file at `path` into PIL's representation. Throws IoError when it cannot be read,
/// FormatError as above.
inline SourceImage decode_source(const std::string& path, const ImageLimits& limits = {}) {
  MappedFile file(path);
  return decode_source(file.bytes(), path, limits);
}

/// Decodes a PNG or JPEG held in memory to RGB, as PIL's `Image.open(f).convert("RGB")`. Throws as `decode_source`.
inline Image decode_image(std::span<const std::byte> bytes, const std::string& name,
                          const ImageLimits& limits = {}) {
  return to_rgb(decode_source(bytes, name, limits));
}

/// Reads and decodes the file at `path` to RGB. Throws IoError when it cannot be read, FormatError as above.
inline Image decode_image(const std::string& path, const ImageLimits& limits = {}) {
  return to_rgb(decode_source(path, limits));
}

}  // namespace froster::io
