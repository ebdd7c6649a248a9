#pragma once
/// @file
/// `Image` (8-bit RGB pixels) and the pixel operations of CLIP's preprocessing, each reproducing the reference
/// (OpenAI `clip.load`'s torchvision transform on a PIL image) exactly:
///  - `resize_bicubic`: Pillow's `Image.resize(size, Image.BICUBIC)` (antialiasing on downscale), bit for bit;
///  - `clip_resize_size`: torchvision's `Resize(n)` output size (shorter side to n);
///  - `center_crop`: torchvision's `CenterCrop` (zero padding when the image is smaller, half-even offsets);
///  - `ClipPreprocess`: the whole transform, to normalised fp32 CHW.
/// `SourceImage` holds an image in the PIL mode its file opened in (RGBA, palette, 16-bit gray, ...): the reference
/// resizes in that mode before converting to RGB, and the `SourceImage` overloads do the same.
/// Decoding PNG/JPEG is in `froster/io/image.hpp`. See docs/io_images.md.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "froster/core/error.hpp"
#include "froster/core/tensor.hpp"
#include "froster/core/tensor_view.hpp"

namespace froster::io {

/// An owning 8-bit RGB image: `height` rows of `width` pixels, each 3 interleaved bytes (R, G, B).
struct Image {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;  ///< height * width * 3 bytes, row-major.

  Image() = default;
  /// A zero-filled (black) image. Throws ValueError for negative sides or a size that cannot be addressed.
  Image(int w, int h) : width(w), height(h) {
    require<ValueError>(w >= 0 && h >= 0, "image sides must be non-negative, got ", w, "x", h);
    require<ValueError>(w == 0 || std::size_t(h) <= std::numeric_limits<std::size_t>::max() / 3 / std::size_t(w),
                        "an image of ", w, "x", h, " pixels does not fit in memory");
    pixels.assign(std::size_t(w) * std::size_t(h) * 3, 0);
  }

  bool empty() const { return width == 0 || height == 0; }
  std::uint8_t* row(int y) { return pixels.data() + std::size_t(y) * std::size_t(width) * 3; }
  const std::uint8_t* row(int y) const { return pixels.data() + std::size_t(y) * std::size_t(width) * 3; }
  /// Channel `c` of pixel (x, y); no bounds checks.
  std::uint8_t& at(int y, int x, int c) { return row(y)[std::size_t(x) * 3 + std::size_t(c)]; }
  std::uint8_t at(int y, int x, int c) const { return row(y)[std::size_t(x) * 3 + std::size_t(c)]; }
};

namespace detail {

// Pillow's fixed-point format for 8-bit resampling: 32-bit accumulators, 8 bits of result, 2 bits of headroom for
// the filter's negative lobes.
inline constexpr int resample_precision_bits = 32 - 8 - 2;

// Keys' cubic convolution kernel with a = -0.5, written with Pillow's operation order so the double results (and
// hence the rounded fixed-point coefficients) are identical.
inline double bicubic_kernel(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

/// The taps of one resampling pass: output index i reads `count[i]` inputs from `first[i]` with weights
/// `weights[i * taps ...]` (fixed point, `resample_precision_bits` fraction bits).
struct ResampleTaps {
  int taps = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<std::int32_t> weights;   ///< fixed point, for 8-bit samples
  std::vector<double> exact_weights;   ///< normalised doubles, for Pillow's 16-bit (I;16) path
};

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the full-image box [0, in_size): the filter support grows
// with the downscale factor (antialiasing), bounds are rounded then clipped to the image, weights are normalised
// to sum 1 in double and then rounded half away from zero to fixed point.
inline ResampleTaps bicubic_taps(int in_size, int out_size) {
  const float in0 = 0.0f, in1 = static_cast<float>(in_size);  // Pillow's box is float
  const double scale = static_cast<double>(in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = 2.0 * filterscale;
  ResampleTaps t;
  t.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.first.resize(std::size_t(out_size));
  t.count.resize(std::size_t(out_size));
  t.weights.assign(std::size_t(out_size) * std::size_t(t.taps), 0);
  t.exact_weights.assign(std::size_t(out_size) * std::size_t(t.taps), 0.0);
  std::vector<double> w(std::size_t(t.taps));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);  // truncation, as Pillow's cast
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[std::size_t(x)] = bicubic_kernel((x + xmin - center + 0.5) * ss);
      ww += w[std::size_t(x)];
    }
    std::int32_t* k = t.weights.data() + std::size_t(xx) * std::size_t(t.taps);
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[std::size_t(x)] / ww : w[std::size_t(x)];
      t.exact_weights[std::size_t(xx) * std::size_t(t.taps) + std::size_t(x)] = v;
      const double scaled = v * double(1 << resample_precision_bits);
      k[x] = static_cast<std::int32_t>(v < 0 ? -0.5 + scaled : 0.5 + scaled);
    }
    t.first[std::size_t(xx)] = xmin;
    t.count[std::size_t(xx)] = xmax;
  }
  return t;
}

// Rounds a fixed-point accumulator (which started at one half) to a byte, clamping as Pillow's clip8 table does.
inline std::uint8_t clip8(std::int64_t acc) {
  const std::int64_t v = acc >> resample_precision_bits;  // arithmetic shift: floor
  return static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Python 3's round(d / 2.0) for a non-negative integer d: halves go to the even neighbour.
inline int half_even_half(int d) {
  const int q = d / 2;
  return (d % 2 == 0 || q % 2 == 0) ? q : q + 1;
}

}  // namespace detail

/// Which pass of the separable resize runs first. The two orders round the intermediate image differently, so
/// they differ by a unit or two in some pixels, and Pillow changed its choice in version 13.
enum class PassOrder {
  pillow13,         ///< Pillow >= 13: vertical first when the height shrinks and 2 * (w - out_w) < (h - out_h)
  horizontal_first  ///< Pillow <= 12: always horizontal, then vertical
};

namespace detail {

/// Interleaved samples (`channels` per pixel, row-major): the working form of every PIL mode during resizing.
template <class T>
struct Raster {
  int width = 0, height = 0, channels = 0;
  std::vector<T> data;
  Raster() = default;
  Raster(int w, int h, int c)
      : width(w), height(h), channels(c), data(std::size_t(w) * std::size_t(h) * std::size_t(c)) {}
};

template <class T>
struct RasterView {
  const T* data = nullptr;
  int width = 0, height = 0, channels = 0;
  const T* row(int y) const { return data + std::size_t(y) * std::size_t(width) * std::size_t(channels); }
};

template <class T>
RasterView<T> view(const Raster<T>& r) { return {r.data.data(), r.width, r.height, r.channels}; }

// Rounds an accumulated sample: 8 bit as Pillow's fixed-point path; 16 bit (I;16) as Pillow 13's, which sums in
// double, rounds half away from zero and clamps to 0..65535 (older Pillow stored clip8(v >> 8) and clip8(v % 256)
// as the two bytes, which differs above 65535).
inline std::uint8_t finish_sample(std::int64_t acc) { return clip8(acc); }
inline std::uint16_t finish_sample(double ss) {
  const int v = static_cast<int>(ss >= 0.0 ? ss + 0.5 : ss - 0.5);
  return static_cast<std::uint16_t>(v < 0 ? 0 : v > 65535 ? 65535 : v);
}

// One horizontal pass over rows [row_first, row_first + rows) of `in`, with `C` channels known at compile time so
// the per-channel accumulators stay in registers.
template <int C, class T>
Raster<T> horizontal_pass_c(RasterView<T> in, const ResampleTaps& t, int out_width, int row_first, int rows) {
  using Acc = std::conditional_t<std::is_same_v<T, std::uint8_t>, std::int64_t, double>;
  const Acc start = std::is_same_v<T, std::uint8_t> ? Acc(std::int64_t(1) << (resample_precision_bits - 1)) : Acc(0);
  Raster<T> out(out_width, rows, C);
  for (int y = 0; y < rows; ++y) {
    const T* s = in.row(y + row_first);
    T* d = out.data.data() + std::size_t(y) * std::size_t(out_width) * C;
    for (int xx = 0; xx < out_width; ++xx) {
      const T* p = s + std::size_t(t.first[std::size_t(xx)]) * C;
      const int count = t.count[std::size_t(xx)];
      Acc acc[C];
      for (int ch = 0; ch < C; ++ch) acc[ch] = start;
      if constexpr (std::is_same_v<T, std::uint8_t>) {
        const std::int32_t* k = t.weights.data() + std::size_t(xx) * std::size_t(t.taps);
        for (int n = 0; n < count; ++n)
          for (int ch = 0; ch < C; ++ch) acc[ch] += std::int64_t(p[std::size_t(n) * C + std::size_t(ch)]) * k[n];
      } else {
        const double* k = t.exact_weights.data() + std::size_t(xx) * std::size_t(t.taps);
        for (int n = 0; n < count; ++n)
          for (int ch = 0; ch < C; ++ch) acc[ch] += double(p[std::size_t(n) * C + std::size_t(ch)]) * k[n];
      }
      for (int ch = 0; ch < C; ++ch) d[std::size_t(xx) * C + std::size_t(ch)] = finish_sample(acc[ch]);
    }
  }
  return out;
}

template <class T>
Raster<T> horizontal_pass(RasterView<T> in, const ResampleTaps& t, int out_width, int row_first, int rows) {
  switch (in.channels) {
    case 1: return horizontal_pass_c<1>(in, t, out_width, row_first, rows);
    case 2: return horizontal_pass_c<2>(in, t, out_width, row_first, rows);
    case 3: return horizontal_pass_c<3>(in, t, out_width, row_first, rows);
    default: return horizontal_pass_c<4>(in, t, out_width, row_first, rows);
  }
}

// Row accumulation of the vertical pass: 8-bit samples in Pillow's fixed point, 16-bit ones in double. Every
// element still sums its taps in order, so the result is the same as summing one sample at a time.
inline void accumulate_row(std::vector<std::int64_t>& acc, const std::uint8_t* src, const ResampleTaps& t, int i,
                           int n) {
  const std::int64_t k = t.weights[std::size_t(i) * std::size_t(t.taps) + std::size_t(n)];
  for (std::size_t j = 0; j < acc.size(); ++j) acc[j] += std::int64_t(src[j]) * k;
}
inline void accumulate_row(std::vector<double>& acc, const std::uint16_t* src, const ResampleTaps& t, int i, int n) {
  const double k = t.exact_weights[std::size_t(i) * std::size_t(t.taps) + std::size_t(n)];
  for (std::size_t j = 0; j < acc.size(); ++j) acc[j] += double(src[j]) * k;
}
// One vertical pass; `in`'s row 0 is source row `row_offset` of the taps. Accumulates whole rows (cache friendly).
template <class T>
Raster<T> vertical_pass(RasterView<T> in, const ResampleTaps& t, int out_height, int row_offset) {
  using Acc = std::conditional_t<std::is_same_v<T, std::uint8_t>, std::int64_t, double>;
  const Acc start = std::is_same_v<T, std::uint8_t> ? Acc(std::int64_t(1) << (resample_precision_bits - 1)) : Acc(0);
  Raster<T> out(in.width, out_height, in.channels);
  const std::size_t row_samples = std::size_t(in.width) * std::size_t(in.channels);
  std::vector<Acc> acc(row_samples);
  for (int yy = 0; yy < out_height; ++yy) {
    std::fill(acc.begin(), acc.end(), start);
    const int first = t.first[std::size_t(yy)] - row_offset;
    for (int n = 0; n < t.count[std::size_t(yy)]; ++n) accumulate_row(acc, in.row(first + n), t, yy, n);
    T* d = out.data.data() + std::size_t(yy) * row_samples;
    for (std::size_t i = 0; i < row_samples; ++i) d[i] = finish_sample(acc[i]);
  }
  return out;
}

// Pillow's ImagingResampleInner for any sample type and channel count.
template <class T>
Raster<T> resize_raster(RasterView<T> in, int out_width, int out_height, PassOrder order) {
  const bool horizontal = out_width != in.width;
  const bool vertical = out_height != in.height;
  if (!horizontal && !vertical) {
    Raster<T> copy(in.width, in.height, in.channels);
    std::copy(in.data, in.data + copy.data.size(), copy.data.begin());
    return copy;
  }
  if (!vertical) return horizontal_pass(in, bicubic_taps(in.width, out_width), out_width, 0, in.height);
  const ResampleTaps vt = bicubic_taps(in.height, out_height);
  if (!horizontal) return vertical_pass(in, vt, out_height, 0);
  const ResampleTaps ht = bicubic_taps(in.width, out_width);

  // Pillow 13's choice, found by comparing both orders against it on thousands of sizes (docs/io_images.md).
  const bool vertical_first = order == PassOrder::pillow13 && out_height < in.height &&
                              2 * (std::int64_t(in.width) - out_width) < std::int64_t(in.height) - out_height;
  if (vertical_first) {
    const Raster<T> temp = vertical_pass(in, vt, out_height, 0);
    return horizontal_pass(view(temp), ht, out_width, 0, out_height);
  }
  // Pillow runs the horizontal pass only over the rows the vertical pass will read.
  const int row_first = vt.first.front();
  const int row_last = vt.first.back() + vt.count.back();
  const Raster<T> temp = horizontal_pass(in, ht, out_width, row_first, row_last - row_first);
  return vertical_pass(view(temp), vt, out_height, row_first);
}

inline void check_resize_args(int in_width, int in_height, int out_width, int out_height) {
  require<ValueError>(in_width > 0 && in_height > 0, "resize_bicubic: the input image is empty (", in_width, "x",
                      in_height, ")");
  require<ValueError>(out_width > 0 && out_height > 0, "resize_bicubic: output size must be positive, got ",
                      out_width, "x", out_height);
}

}  // namespace detail

/// Resizes to `out_width` x `out_height` exactly as Pillow's `Image.resize((out_width, out_height), Image.BICUBIC)`
/// does for an RGB image: two separable passes (each skipped when its side is unchanged, in the order `order`
/// picks), with the support widened by the downscale factor, fixed-point weights, and the intermediate rounded to
/// 8 bits. Throws ValueError for an empty input or a non-positive output side.
inline Image resize_bicubic(const Image& in, int out_width, int out_height, PassOrder order = PassOrder::pillow13) {
  detail::check_resize_args(in.width, in.height, out_width, out_height);
  detail::Raster<std::uint8_t> r =
      detail::resize_raster<std::uint8_t>({in.pixels.data(), in.width, in.height, 3}, out_width, out_height, order);
  Image out;
  out.width = r.width;
  out.height = r.height;
  out.pixels = std::move(r.data);
  return out;
}

/// torchvision's `Resize(n)` output size for a `width` x `height` image: the shorter side becomes `n` and the longer
/// `int(n * long / short)` (truncated). Returns {width, height}. Throws ValueError for non-positive arguments.
inline std::array<int, 2> clip_resize_size(int width, int height, int n) {
  require<ValueError>(width > 0 && height > 0 && n > 0, "clip_resize_size: sizes must be positive, got ", width,
                      "x", height, " -> ", n);
  const bool portrait = width <= height;  // torchvision: short, long = (w, h) if w <= h else (h, w)
  const int s = portrait ? width : height, l = portrait ? height : width;
  const double long_side = static_cast<double>(std::int64_t(n) * l) / static_cast<double>(s);
  require<ValueError>(long_side < 2147483647.0, "clip_resize_size: ", width, "x", height, " -> ", n,
                      " gives a side that does not fit in an int");
  const int new_long = static_cast<int>(long_side);
  return portrait ? std::array<int, 2>{n, new_long} : std::array<int, 2>{new_long, n};
}

namespace detail {

/// The pixel correspondence of torchvision's CenterCrop (see `center_crop`): calls copy(y, x, sy, sx) for every output
/// pixel (y, x) that comes from input pixel (sy, sx); the others are padding. Both crops (RGB and any mode) use it.
template <class Copy>
void for_each_center_crop_pixel(int width, int height, int crop_width, int crop_height, Copy&& copy) {
  const auto offset = [](int size, int crop) {
    return crop > size ? -((crop - size) / 2) : half_even_half(size - crop);
  };
  const int ox = offset(width, crop_width), oy = offset(height, crop_height);
  for (int y = 0; y < crop_height; ++y) {
    const int sy = y + oy;
    if (sy < 0 || sy >= height) continue;
    for (int x = 0; x < crop_width; ++x) {
      const int sx = x + ox;
      if (sx >= 0 && sx < width) copy(y, x, sy, sx);
    }
  }
}

}  // namespace detail

/// torchvision's `CenterCrop((crop_height, crop_width))` on a PIL image: a side smaller than the crop is first padded
/// with black ((c - s) // 2 before, the rest after); otherwise the offset is Python's round((s - c) / 2), which
/// rounds halves to even. Throws ValueError for an empty input or a non-positive crop.
inline Image center_crop(const Image& in, int crop_width, int crop_height) {
  require<ValueError>(!in.empty(), "center_crop: the input image is empty (", in.width, "x", in.height, ")");
  require<ValueError>(crop_width > 0 && crop_height > 0, "center_crop: crop size must be positive, got ",
                      crop_width, "x", crop_height);
  Image out(crop_width, crop_height);
  detail::for_each_center_crop_pixel(in.width, in.height, crop_width, crop_height, [&](int y, int x, int sy, int sx) {
    for (int c = 0; c < 3; ++c) out.at(y, x, c) = in.at(sy, sx, c);
  });
  return out;
}

/// The image modes PIL opens PNG and JPEG files in. CLIP's reference transform resizes in this mode, before its
/// convert("RGB"), so preprocessing needs it (see `SourceImage`).
enum class PilMode {
  rgb,      ///< 3 samples per pixel
  l,        ///< gray, 1 sample
  la,       ///< gray + alpha, 2 samples (PIL opens 16-bit gray+alpha PNGs as RGBA with equal colours: same result)
  rgba,     ///< 4 samples
  p,        ///< palette index, 1 sample, with `palette`
  bilevel,  ///< PIL's mode "1": 1 sample, 0 or 255
  i16,      ///< 16-bit gray (PIL's I;16), 1 sample in `samples16`
  cmyk      ///< 4 samples, as PIL holds them (Adobe-inverted JPEG data already un-inverted)
};

/// A decoded image as PIL holds it after `Image.open`, before `convert("RGB")`: needed to reproduce the reference
/// preprocessing of non-RGB files, which resizes in the source mode (premultiplied alpha for RGBA/LA, nearest
/// neighbour for palette and bilevel images, 16-bit arithmetic for I;16). `to_rgb` gives the `Image`.
struct SourceImage {
  PilMode mode = PilMode::rgb;
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> samples;    ///< height * width * channels(mode); unused for i16
  std::vector<std::uint16_t> samples16;  ///< height * width, for i16 only
  std::array<std::uint8_t, 768> palette{};  ///< RGB triples for p; entries past the file's palette are black

  /// Samples per pixel in `samples` (or `samples16`).
  static int channels(PilMode m) {
    switch (m) {
      case PilMode::rgb: return 3;
      case PilMode::la: return 2;
      case PilMode::rgba:
      case PilMode::cmyk: return 4;
      default: return 1;
    }
  }
};

/// PIL's `convert("RGB")`: alpha dropped (not composited), gray replicated, palette looked up, I;16 clipped at 255,
/// CMYK as `nk - nk * c / 255` with PIL's rounded division (nk = 255 - k).
inline Image to_rgb(const SourceImage& src) {
  Image out(src.width, src.height);
  const std::size_t n = std::size_t(src.width) * std::size_t(src.height);
  const int c = SourceImage::channels(src.mode);
  std::uint8_t* d = out.pixels.data();
  for (std::size_t i = 0; i < n; ++i, d += 3) {
    if (src.mode == PilMode::i16) {
      const std::uint16_t v = src.samples16[i];
      d[0] = d[1] = d[2] = std::uint8_t(v > 255 ? 255 : v);
      continue;
    }
    const std::uint8_t* p = src.samples.data() + i * std::size_t(c);
    switch (src.mode) {
      case PilMode::rgb:
      case PilMode::rgba: d[0] = p[0], d[1] = p[1], d[2] = p[2]; break;
      case PilMode::p: std::copy(src.palette.begin() + 3 * p[0], src.palette.begin() + 3 * p[0] + 3, d); break;
      case PilMode::cmyk:
        for (int ch = 0; ch < 3; ++ch) {
          const int nk = 255 - p[3];
          const int t = p[ch] * nk + 128;
          const int v = nk - (((t >> 8) + t) >> 8);
          d[ch] = std::uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        break;
      default: d[0] = d[1] = d[2] = p[0]; break;  // l, la, bilevel
    }
  }
  return out;
}

/// An RGB `Image` as a `SourceImage` of mode rgb.
inline SourceImage to_source(const Image& image) {
  SourceImage s;
  s.width = image.width;
  s.height = image.height;
  s.samples = image.pixels;
  return s;
}

namespace detail {

// Pillow's NEAREST resize (ImagingScaleAffine): source coordinate accumulated in double from scale / 2 in steps of
// scale = in / out, truncated.
inline std::vector<int> nearest_index(int in_size, int out_size) {
  const double scale = static_cast<double>(static_cast<float>(in_size)) / out_size;
  std::vector<int> index(static_cast<std::size_t>(out_size));
  double pos = 0.0 + scale * 0.5;
  for (int i = 0; i < out_size; ++i, pos += scale) {
    const int v = pos < 0.0 ? -1 : static_cast<int>(pos);
    index[std::size_t(i)] = v < 0 ? 0 : (v >= in_size ? in_size - 1 : v);
  }
  return index;
}

// PIL's RGBA -> RGBa (and LA -> La): colour * alpha / 255 with its rounded division, alpha kept.
inline void premultiply(Raster<std::uint8_t>& r) {
  const int c = r.channels;
  for (std::size_t i = 0; i < r.data.size(); i += std::size_t(c)) {
    const unsigned alpha = r.data[i + std::size_t(c - 1)];
    for (int ch = 0; ch < c - 1; ++ch) {
      const unsigned t = r.data[i + std::size_t(ch)] * alpha + 128;
      r.data[i + std::size_t(ch)] = std::uint8_t(((t >> 8) + t) >> 8);
    }
  }
}

// PIL's RGBa -> RGBA: colour * 255 / alpha (integer division, clipped), unchanged where alpha is 0 or 255.
inline void unpremultiply(Raster<std::uint8_t>& r) {
  const int c = r.channels;
  for (std::size_t i = 0; i < r.data.size(); i += std::size_t(c)) {
    const unsigned alpha = r.data[i + std::size_t(c - 1)];
    if (alpha == 0 || alpha == 255) continue;
    for (int ch = 0; ch < c - 1; ++ch) {
      const unsigned v = 255u * r.data[i + std::size_t(ch)] / alpha;
      r.data[i + std::size_t(ch)] = std::uint8_t(v > 255 ? 255 : v);
    }
  }
}

}  // namespace detail

/// Pillow's `Image.resize((w, h), Image.BICUBIC)` in the image's own mode, as the CLIP reference runs it before
/// converting to RGB: bicubic per channel for RGB, L and CMYK; bicubic on alpha-premultiplied samples for RGBA and
/// LA; nearest neighbour for palette and bilevel images (Pillow forces NEAREST there); Pillow's 16-bit path for
/// I;16. Throws ValueError for an empty input or a non-positive output side.
inline SourceImage resize_bicubic(const SourceImage& in, int out_width, int out_height,
                                  PassOrder order = PassOrder::pillow13) {
  detail::check_resize_args(in.width, in.height, out_width, out_height);
  SourceImage out;
  out.mode = in.mode;
  out.width = out_width;
  out.height = out_height;
  out.palette = in.palette;
  const int c = SourceImage::channels(in.mode);
  if (in.width == out_width && in.height == out_height) return in;  // Pillow copies
  switch (in.mode) {
    case PilMode::p:
    case PilMode::bilevel: {
      const std::vector<int> xs = detail::nearest_index(in.width, out_width);
      const std::vector<int> ys = detail::nearest_index(in.height, out_height);
      out.samples.resize(std::size_t(out_width) * std::size_t(out_height));
      for (int y = 0; y < out_height; ++y)
        for (int x = 0; x < out_width; ++x)
          out.samples[std::size_t(y) * std::size_t(out_width) + std::size_t(x)] =
              in.samples[std::size_t(ys[std::size_t(y)]) * std::size_t(in.width) + std::size_t(xs[std::size_t(x)])];
      return out;
    }
    case PilMode::i16:
      out.samples16 = detail::resize_raster<std::uint16_t>({in.samples16.data(), in.width, in.height, 1}, out_width,
                                                           out_height, order)
                          .data;
      return out;
    case PilMode::la:
    case PilMode::rgba: {
      detail::Raster<std::uint8_t> pre(in.width, in.height, c);
      pre.data = in.samples;
      detail::premultiply(pre);
      detail::Raster<std::uint8_t> r = detail::resize_raster(detail::view(pre), out_width, out_height, order);
      detail::unpremultiply(r);
      out.samples = std::move(r.data);
      return out;
    }
    default:
      out.samples = detail::resize_raster<std::uint8_t>({in.samples.data(), in.width, in.height, c}, out_width,
                                                        out_height, order)
                        .data;
      return out;
  }
}

/// `center_crop` for any mode (zero samples where padding is needed, as torchvision pads with fill 0).
inline SourceImage center_crop(const SourceImage& in, int crop_width, int crop_height) {
  require<ValueError>(in.width > 0 && in.height > 0, "center_crop: the input image is empty (", in.width, "x",
                      in.height, ")");
  require<ValueError>(crop_width > 0 && crop_height > 0, "center_crop: crop size must be positive, got ",
                      crop_width, "x", crop_height);
  SourceImage out;
  out.mode = in.mode;
  out.width = crop_width;
  out.height = crop_height;
  out.palette = in.palette;
  const std::size_t c = std::size_t(SourceImage::channels(in.mode));
  const bool wide = in.mode == PilMode::i16;
  (wide ? out.samples16.resize(std::size_t(crop_width) * std::size_t(crop_height))
        : out.samples.resize(std::size_t(crop_width) * std::size_t(crop_height) * c));
  detail::for_each_center_crop_pixel(in.width, in.height, crop_width, crop_height, [&](int y, int x, int sy, int sx) {
    const std::size_t di = std::size_t(y) * std::size_t(crop_width) + std::size_t(x);
    const std::size_t si = std::size_t(sy) * std::size_t(in.width) + std::size_t(sx);
    if (wide) out.samples16[di] = in.samples16[si];
    else std::copy(in.samples.begin() + std::ptrdiff_t(si * c), in.samples.begin() + std::ptrdiff_t(si * c + c),
                   out.samples.begin() + std::ptrdiff_t(di * c));
  });
  return out;
}

/// CLIP's image preprocessing (OpenAI `clip.load`'s `_transform(n_px)`): Resize(n_px, BICUBIC) on the shorter side,
/// CenterCrop(n_px), RGB, ToTensor (/255), Normalize(mean, std), in fp32 with torch's operation order, so outputs
/// match the reference bit for bit. Takes an RGB `Image`, or a `SourceImage` to reproduce the reference on non-RGB
/// files too (it resizes and crops in the file's PIL mode and converts to RGB last, as the reference does).
struct ClipPreprocess {
  int resolution = 224;
  // The constants as Python floats narrowed to float32 (what torch.as_tensor(mean, dtype=float32) holds).
  std::array<float, 3> mean{static_cast<float>(0.48145466), static_cast<float>(0.4578275),
                            static_cast<float>(0.40821073)};
  std::array<float, 3> stddev{static_cast<float>(0.26862954), static_cast<float>(0.26130258),
                              static_cast<float>(0.27577711)};
  /// The Pillow version to match (see PassOrder).
  PassOrder pass_order = PassOrder::pillow13;

  /// The resized and center-cropped `resolution` x `resolution` RGB image, before normalisation.
  Image crop(const Image& image) const {
    check_resolution();
    const auto size = clip_resize_size(image.width, image.height, resolution);
    // torchvision returns the image itself when the size is unchanged (Pillow's resize would copy it anyway).
    if (size[0] == image.width && size[1] == image.height) return center_crop(image, resolution, resolution);
    return center_crop(resize_bicubic(image, size[0], size[1], pass_order), resolution, resolution);
  }
  Image crop(const SourceImage& image) const {
    check_resolution();
    const auto size = clip_resize_size(image.width, image.height, resolution);
    if (size[0] == image.width && size[1] == image.height)
      return to_rgb(center_crop(image, resolution, resolution));
    return to_rgb(center_crop(resize_bicubic(image, size[0], size[1], pass_order), resolution, resolution));
  }

  /// Writes the normalised [3, resolution, resolution] tensor into `out` (any strides, host memory).
  /// Throws ShapeError if `out` has another shape, ValueError for an empty image.
  template <class Img>
    requires(std::is_same_v<Img, Image> || std::is_same_v<Img, SourceImage>)
  void operator()(const Img& image, TensorView<float> out) const {
    check_resolution();
    require<ShapeError>(out.rank() == 3 && out.extent(0) == 3 && out.extent(1) == resolution &&
                            out.extent(2) == resolution,
                        "ClipPreprocess: output must be [3, ", resolution, ", ", resolution, "], got ", out.extents());
    require<ShapeError>(out.device().is_host(), "ClipPreprocess: output must be in host memory, got ", out);
    normalise(crop(image), out);
  }

  /// Writes slice `index` of a [N, 3, resolution, resolution] batch.
  template <class Img>
    requires(std::is_same_v<Img, Image> || std::is_same_v<Img, SourceImage>)
  void operator()(const Img& image, TensorView<float> batch, index_t index) const {
    require<ShapeError>(batch.rank() == 4, "ClipPreprocess: batch must be [N, 3, ", resolution, ", ", resolution,
                        "], got ", batch.extents());
    require<ShapeError>(index >= 0 && index < batch.extent(0), "ClipPreprocess: index ", index,
                        " is outside a batch of ", batch.extent(0));
    TensorView<float> slice(batch.data() + index * batch.stride(0),
                            {batch.extent(1), batch.extent(2), batch.extent(3)},
                            {batch.stride(1), batch.stride(2), batch.stride(3)}, batch.device());
    (*this)(image, slice);
  }

  /// A new [3, resolution, resolution] host tensor.
  template <class Img>
    requires(std::is_same_v<Img, Image> || std::is_same_v<Img, SourceImage>)
  Tensor<float> operator()(const Img& image) const {
    check_resolution();
    Tensor<float> out = Tensor<float>::host({3, resolution, resolution});
    (*this)(image, out.view());
    return out;
  }

 private:
  void check_resolution() const {
    require<ValueError>(resolution > 0, "ClipPreprocess: resolution must be positive, got ", resolution);
  }
  void normalise(const Image& cropped, TensorView<float> out) const {
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < resolution; ++y)
        for (int x = 0; x < resolution; ++x) {
          const float v = static_cast<float>(cropped.at(y, x, c)) / 255.0f;
          out.data()[c * out.stride(0) + y * out.stride(1) + x * out.stride(2)] = (v - mean[std::size_t(c)]) /
                                                                                 stddev[std::size_t(c)];
        }
  }
};

}  // namespace froster::io
