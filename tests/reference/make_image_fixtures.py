#!/usr/bin/env python3
"""Writes the image fixtures that tests/io/test_image.cpp compares froster's decoders, resize and CLIP
preprocessing against (all files are tests/reference/data/image_*).

- image_src_*.png / *.jpg: small source images with seeded gradient + noise content, odd sizes, in many PNG
  variants (RGB, RGBA, gray, gray+alpha, palette 8/4/2/1-bit, 1/2-bit gray, 16-bit gray/RGB/RGBA/gray+alpha,
  Adam7-interlaced, palette indices past the PLTE) and JPEG variants (4:2:0, 4:2:2, 4:4:4, progressive, gray,
  Adobe CMYK). PNG variants PIL cannot write are written by the small encoder below.
- image_dec_<name>.ppm: what PIL decodes, `Image.open(src).convert("RGB")`, as binary PPM.
- image_rsz_<name>_<w>x<h>.ppm: `Image.open(src).convert("RGB").resize((w, h), Image.BICUBIC)` (Pillow 13).
- image_rszh_<name>_<w>x<h>.ppm: the same with Pillow <= 12's pass order (horizontal, then vertical), made with
  one single-axis resize per pass, for sizes where Pillow 13 runs the vertical pass first.
- image_preprocess.fxt, image_preprocess_modes.fxt (format of make_fixtures.py): OpenAI CLIP's `_transform(n_px)`
  output, float32 [3, n_px, n_px], computed with PIL + torch exactly as torchvision does (Resize: short side n_px,
  long side int(n_px * long / short); CenterCrop offsets int(round((s - n_px) / 2.0)); ToTensor; Normalize), on the
  image in the mode PIL opened it in (RGB and L in the first file, the other modes in the second).
- image_cases.txt: the list of cases the test runs, one per line:
    decode <src> <expected.ppm>
    resize <src> <w> <h> <expected.ppm>
    resize_horizontal_first <src> <w> <h> <expected.ppm>
    preprocess <src> <n_px> <fixture file> <fixture entry>

JPEG pixels depend on the libjpeg build: PIL's bundled libjpeg-turbo and the system one must agree (both use the
islow DCT and fancy upsampling; libjpeg-turbo keeps those bit-exact across versions).

    pip install pillow numpy torch
    python3 tests/reference/make_image_fixtures.py
"""

import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from make_fixtures import Writer

DATA = Path(__file__).resolve().parent / "data"
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)

rng = np.random.default_rng(20240426)


def content(w, h, channels=3):
    """Smooth gradients plus noise, so resampling sees both edges and ramps (and PNG still compresses a bit)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = [
        255 * x / max(w - 1, 1),
        255 * y / max(h - 1, 1),
        127.5 + 127.5 * np.sin(x / 3.0 + y / 5.0),
        255 * ((x + y) % 7 < 3),
    ]
    planes = [base[c % 4] + rng.normal(0, 40, (h, w)) for c in range(channels)]
    return np.clip(np.stack(planes, axis=-1), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------- a small PNG encoder

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples, bit_depth):
    """One scanline of samples (already flattened over channels) at the given bit depth, MSB first."""
    if bit_depth == 16:
        return b"".join(struct.pack(">H", int(v)) for v in samples)
    if bit_depth == 8:
        return bytes(int(v) for v in samples)
    out, acc, n = bytearray(), 0, 0
    for v in samples:
        acc = (acc << bit_depth) | int(v)
        n += bit_depth
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


def encode_png(samples, color_type, bit_depth, interlace=False, palette=None):
    """samples: [h, w, channels] integer array of raw sample values. Filter type 0 on every row."""
    h, w = samples.shape[:2]
    flat = samples.reshape(h, w, -1)
    raw = bytearray()
    if interlace:
        for x0, y0, dx, dy in ADAM7:
            sub = flat[y0::dy, x0::dx]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                continue
            for row in sub:
                raw += b"\x00" + pack_row(row.reshape(-1), bit_depth)
    else:
        for row in flat:
            raw += b"\x00" + pack_row(row.reshape(-1), bit_depth)
    out = b"\x89PNG\r\n\x1a\n"
    out += png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, int(interlace)))
    if palette is not None:
        out += png_chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    out += png_chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    out += png_chunk(b"IEND", b"")
    return out


# --------------------------------------------------------------------------------------------------- sources

def make_sources():
    """name -> (file name, bytes)."""
    src = {}

    def pil_save(name, im, ext, **kw):
        path = DATA / f"image_src_{name}.{ext}"
        im.save(path, **kw)
        src[name] = path.name

    def raw_save(name, data):
        path = DATA / f"image_src_{name}.png"
        path.write_bytes(data)
        src[name] = path.name

    # RGB PNGs used for resize and preprocessing: upscale and downscale, portrait, landscape, square, extreme.
    for w, h in [(37, 23), (23, 61), (100, 77), (13, 13), (121, 90), (3, 40), (1, 1)]:
        pil_save(f"rgb_{w}x{h}", Image.fromarray(content(w, h)), "png")
    pil_save("rgba_29x19", Image.fromarray(content(29, 19, 4), "RGBA"), "png")
    pil_save("gray_31x17", Image.fromarray(content(31, 17, 1)[..., 0], "L"), "png")
    pil_save("gray_alpha_19x11", Image.fromarray(content(19, 11, 2), "LA"), "png")
    pal = Image.fromarray(content(27, 21)).quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    pil_save("palette8_27x21", pal, "png")
    pal16 = Image.fromarray(content(27, 21)).quantize(colors=12)
    pil_save("palette4_27x21", pal16, "png", bits=4)
    pil_save("bilevel_21x9", Image.fromarray(content(21, 9, 1)[..., 0], "L").convert("1"), "png")
    gray16 = (content(25, 15, 1)[..., 0].astype(np.uint16) * 7) ^ rng.integers(0, 5, (15, 25), dtype=np.uint16)
    gray16[0, :5] = [0, 255, 256, 65535, 1000]  # around PIL's clip at 255
    raw_save("gray16_25x15", encode_png(gray16[..., None], 0, 16))

    # Variants PIL does not write.
    c = content(17, 11).astype(np.uint16)
    raw_save("rgb16_17x11", encode_png(c * 256 + rng.integers(0, 256, c.shape), 2, 16))
    c4 = content(17, 11, 4).astype(np.uint16)
    raw_save("rgba16_17x11", encode_png(c4 * 256 + rng.integers(0, 256, c4.shape), 6, 16))
    c2 = content(17, 11, 2).astype(np.uint16)
    raw_save("gray_alpha16_17x11", encode_png(c2 * 256 + rng.integers(0, 256, c2.shape), 4, 16))
    raw_save("gray2_19x7", encode_png(rng.integers(0, 4, (7, 19, 1)), 0, 2))
    raw_save("gray4_19x7", encode_png(rng.integers(0, 16, (7, 19, 1)), 0, 4))
    raw_save("interlaced_rgb_23x19", encode_png(content(23, 19), 2, 8, interlace=True))
    raw_save("interlaced_palette2_13x10",
             encode_png(rng.integers(0, 4, (10, 13, 1)), 3, 2, interlace=True, palette=rng.integers(0, 256, (4, 3))))
    raw_save("interlaced_gray1_9x9", encode_png(rng.integers(0, 2, (9, 9, 1)), 0, 1, interlace=True))
    idx = rng.integers(0, 8, (6, 11, 1))
    idx[0, :3, 0] = [5, 6, 7]  # the palette has 5 entries: PIL shows indices past it as black
    raw_save("palette_short_11x6", encode_png(idx, 3, 8, palette=rng.integers(0, 256, (5, 3))))

    # JPEGs: chroma subsampling 4:2:0 / 4:2:2 / 4:4:4, progressive, grayscale, Adobe CMYK.
    jpg = Image.fromarray(content(37, 23))
    pil_save("jpeg420_37x23", jpg, "jpg", quality=90, subsampling=2)
    pil_save("jpeg422_37x23", jpg, "jpg", quality=90, subsampling=1)
    pil_save("jpeg444_37x23", jpg, "jpg", quality=90, subsampling=0)
    pil_save("jpeg_progressive_41x29", Image.fromarray(content(41, 29)), "jpg", quality=85, progressive=True)
    pil_save("jpeg_gray_33x21", Image.fromarray(content(33, 21, 1)[..., 0], "L"), "jpg", quality=90)
    pil_save("jpeg_cmyk_21x13", Image.fromarray(content(21, 13, 4), "CMYK"), "jpg", quality=90)
    pil_save("jpeg420_100x77", Image.fromarray(content(100, 77)), "jpg", quality=80)
    return src


def write_ppm(path, im):
    assert im.mode == "RGB"
    w, h = im.size
    path.write_bytes(f"P6\n{w} {h}\n255\n".encode() + im.tobytes())


def clip_transform(im, n_px):
    """OpenAI CLIP's _transform(n_px) with torchvision's rules spelled out (torchvision is not needed)."""
    w, h = im.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = n_px, int(n_px * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    if (new_w, new_h) != (w, h):
        im = im.resize((new_w, new_h), Image.BICUBIC)
    top = int(round((new_h - n_px) / 2.0))
    left = int(round((new_w - n_px) / 2.0))
    im = im.crop((left, top, left + n_px, top + n_px)).convert("RGB")
    x = torch.from_numpy(np.array(im, dtype=np.uint8)).permute(2, 0, 1).contiguous()
    x = x.to(dtype=torch.float32).div(255)
    mean = torch.as_tensor(MEAN, dtype=torch.float32)[:, None, None]
    std = torch.as_tensor(STD, dtype=torch.float32)[:, None, None]
    return x.sub_(mean).div_(std)


def resize_targets(w, h):
    cap = lambda v: max(1, min(v, 90))  # noqa: E731 keep committed outputs small
    targets = [
        (cap(w + 7), cap(h + 3)),  # upscale
        (cap(w // 3 + 1), cap(h // 2 + 1)),  # downscale
        (w, cap(h // 3 + 1)),  # vertical pass only
        (cap(w // 2 + 1), h),  # horizontal pass only
        (1, 1),
        (cap(w // 5 + 1), cap(2 * h)),  # down one way, up the other
        (cap(3 * w), cap(h // 7 + 1)),
    ]
    out = []
    for t in targets:
        if t not in out and t[0] * t[1] * 3 <= 40000:
            out.append(t)
    return out


def main():
    DATA.mkdir(parents=True, exist_ok=True)
    for old in DATA.glob("image_*"):
        old.unlink()
    src = make_sources()
    lines = []
    for name, file in src.items():
        im = Image.open(DATA / file)
        rgb = im.convert("RGB")
        write_ppm(DATA / f"image_dec_{name}.ppm", rgb)
        lines.append(f"decode {file} image_dec_{name}.ppm")
        if name.startswith("rgb_") and not name.startswith("rgb16"):
            for tw, th in resize_targets(*rgb.size):
                out = f"image_rsz_{name}_{tw}x{th}.ppm"
                write_ppm(DATA / out, rgb.resize((tw, th), Image.BICUBIC))
                lines.append(f"resize {file} {tw} {th} {out}")
            # Pillow <= 12 always ran the horizontal pass first; Pillow 13 runs the vertical one first when
            # h - th > 2 * (w - tw). One resize per axis reproduces the old order exactly (a single-axis resize is a
            # single pass), so these cases pin PassOrder::horizontal_first where the two orders differ.
            w, h = rgb.size
            for tw, th in [(max(1, w - 1), max(1, h // 4)), (w + 5, max(1, h // 2))]:
                if th == h or tw == w:
                    continue
                legacy = rgb.resize((tw, h), Image.BICUBIC).resize((tw, th), Image.BICUBIC)
                if np.array_equal(np.asarray(legacy), np.asarray(rgb.resize((tw, th), Image.BICUBIC))):
                    continue  # the orders agree here: nothing to pin
                out = f"image_rszh_{name}_{tw}x{th}.ppm"
                write_ppm(DATA / out, legacy)
                lines.append(f"resize_horizontal_first {file} {tw} {th} {out}")

    # CLIP preprocessing, on the file as PIL opens it: the reference resizes in that mode (RGBA/LA premultiplied,
    # P and 1 with NEAREST, I;16 in 16 bits, CMYK per channel) before convert("RGB").
    groups = {
        "image_preprocess.fxt": [
            ("rgb_37x23", 24), ("rgb_23x61", 24), ("rgb_100x77", 24), ("rgb_13x13", 24), ("rgb_121x90", 32),
            ("rgb_3x40", 24), ("rgb_13x13", 13), ("gray_31x17", 24), ("jpeg420_100x77", 24),
            ("jpeg_gray_33x21", 16)],
        "image_preprocess_modes.fxt": [
            ("rgba_29x19", 16), ("rgba_29x19", 32), ("gray_alpha_19x11", 24), ("palette8_27x21", 16),
            ("palette8_27x21", 32), ("palette4_27x21", 24), ("bilevel_21x9", 16), ("gray16_25x15", 16),
            ("gray16_25x15", 32), ("rgba16_17x11", 16), ("gray_alpha16_17x11", 16), ("jpeg_cmyk_21x13", 16),
            ("jpeg_cmyk_21x13", 24), ("interlaced_palette2_13x10", 16), ("gray2_19x7", 16),
            ("palette_short_11x6", 16)],
    }
    sizes = {}
    for fxt, cases in groups.items():
        writer = Writer()
        for name, n_px in cases:
            entry = f"{name}/n{n_px}"
            writer.add(entry, clip_transform(Image.open(DATA / src[name]), n_px))
            lines.append(f"preprocess {src[name]} {n_px} {fxt} {entry}")
        sizes[fxt] = writer.write(DATA / fxt)
    (DATA / "image_cases.txt").write_text("\n".join(lines) + "\n")
    total = sum(p.stat().st_size for p in DATA.glob("image_*"))
    print(f"{len(lines)} cases, {sizes}, all image_* files {total} bytes")


if __name__ == "__main__":
    main()
