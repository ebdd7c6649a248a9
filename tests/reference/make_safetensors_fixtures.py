"""Writes small safetensors files with the Python `safetensors` package for tests/io/test_safetensors.cpp.

Files (in tests/reference/data/):
  safetensors_mixed.safetensors       every dtype froster reads (F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL),
                                      a 0-d scalar, an empty [0, 3] tensor, inf/NaN/-0/subnormals, and metadata
  safetensors_mixed_expected.json     what a reader must return: per tensor (in data-offset order) its dtype, shape
                                      and the bit patterns (uint32) of torch's `.to(torch.float32)`, plus the metadata
                                      (a NaN's bits are torch's; readers need only return some NaN there)
  safetensors_f32.safetensors         F32 only, one metadata key, awkward names (UTF-8, quote, backslash, control
                                      characters): froster's writer must reproduce these bytes exactly
  safetensors_f16_src.safetensors     F32 values chosen to exercise rounding (ties, subnormals, the largest half)
  safetensors_f16_ref.safetensors     the same dict after torch's `.half()`, written by Python: froster's F16 writer
                                      must reproduce these bytes exactly
  safetensors_bf16_ref.safetensors    likewise with `.bfloat16()`

Run from the repository root:  python3 tests/reference/make_safetensors_fixtures.py
The metadata of safetensors_mixed has two keys, whose order in the file follows a Rust HashMap (not stable between
runs); every other file has at most one key, so its bytes are reproducible.
"""
import json
import pathlib
import struct

import torch
from safetensors.torch import save_file

DATA = pathlib.Path(__file__).resolve().parent / "data"


def f32_bits(t):
    return [int(b) & 0xFFFFFFFF for b in t.to(torch.float32).reshape(-1).view(torch.int32).tolist()]


def header_order(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    return sorted(header, key=lambda k: tuple(header[k]["data_offsets"]))


def mixed():
    inf, nan = float("inf"), float("nan")
    tensors = {
        "f32.matrix": torch.tensor([[1.0, -0.0, 1e-45], [inf, -2.5, 3.0e38]], dtype=torch.float32),
        "f16.vec": torch.tensor([65504.0, -inf, nan, 2.0**-24, 1.0 / 3.0, -0.0, 6.1e-5], dtype=torch.float16),
        "bf16.col": torch.tensor([[3.140625], [-1.0e38], [2.0**-133]], dtype=torch.bfloat16),
        "f64.grid": torch.tensor([[0.1, 1e-50], [-3.0e38, 1.0 + 2.0**-30]], dtype=torch.float64),
        "text.position_ids": torch.arange(5, dtype=torch.int64).reshape(1, 5),
        "i32.v": torch.tensor([-(2**24), 7, 2**30], dtype=torch.int32),
        "i16.v": torch.tensor([-32768, 32767], dtype=torch.int16),
        "i8.v": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "u8.v": torch.tensor([0, 255], dtype=torch.uint8),
        "mask": torch.tensor([True, False, False, True]),
        "logit_scale": torch.tensor(1.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
    }
    metadata = {"format": "pt", "source": "froster fixture"}
    path = DATA / "safetensors_mixed.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    dtype_names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
                   torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
                   torch.uint8: "U8", torch.bool: "BOOL"}
    expected = {
        "metadata": metadata,
        "tensors": [{"name": name, "dtype": dtype_names[tensors[name].dtype], "shape": list(tensors[name].shape),
                     "bits": f32_bits(tensors[name])} for name in header_order(path)],
    }
    (DATA / "safetensors_mixed_expected.json").write_text(json.dumps(expected, indent=1) + "\n")


def f32_only():
    g = torch.Generator().manual_seed(4)
    tensors = {
        "visual.proj": torch.randn(3, 4, generator=g),
        "b.bias": torch.randn(5, generator=g),
        "caf\u00e9.\u6743\u91cd": torch.randn(2, 1, 2, generator=g),
        'quote"and\\backslash': torch.randn(1, generator=g),
        "tab\tnew\nline\x01ctl": torch.randn(2, generator=g),
        "scalar": torch.tensor(-0.25),
        "empty": torch.zeros(4, 0),
    }
    save_file(tensors, str(DATA / "safetensors_f32.safetensors"), metadata={"format": "pt \u2713"})


def rounding_sources():
    g = torch.Generator().manual_seed(16)
    half_ulp_at_1 = 2.0**-11  # half: 10 mantissa bits
    bf16_ulp_at_1 = 2.0**-8  # bfloat16: 7 mantissa bits
    ties = []
    for k in range(8):  # exact midpoints around 1: even neighbours below and above
        ties += [1.0 + (2 * k + 1) * half_ulp_at_1, -(1.0 + (2 * k + 1) * half_ulp_at_1)]
        ties += [1.0 + (2 * k + 1) * bf16_ulp_at_1 / 2]
    sub = [(2 * k + 1) * 2.0**-25 for k in range(6)]  # midpoints between half subnormals
    edges = [65504.0, 65519.0, -65519.99, 2.0**-14, 2.0**-14 * (1 - 2.0**-12), 2.0**-24, 2.0**-25,
             2.0**-25 * (1 + 2.0**-10), 1e-8, 0.0, -0.0, float("inf"), -float("inf")]
    # No NaN here: torch's vectorised conversions write NaN bit patterns of their own (0xffff for bfloat16), which
    # are not a rounding rule; the C++ tests check NaN handling in closed form.
    tensors = {
        "random.normal": torch.randn(4, 16, generator=g),
        "random.scaled": torch.randn(32, generator=g) * torch.logspace(-9, 4, 32),
        "ties": torch.tensor(ties, dtype=torch.float32),
        "subnormal_ties": torch.tensor(sub, dtype=torch.float32),
        "edges": torch.tensor(edges, dtype=torch.float32),
        "scalar": torch.tensor(2.0**-20 * 3),
    }
    metadata = {"format": "pt"}
    save_file(tensors, str(DATA / "safetensors_f16_src.safetensors"), metadata=metadata)
    save_file({k: v.half() for k, v in tensors.items()}, str(DATA / "safetensors_f16_ref.safetensors"),
              metadata=metadata)
    save_file({k: v.bfloat16() for k, v in tensors.items()}, str(DATA / "safetensors_bf16_ref.safetensors"),
              metadata=metadata)


if __name__ == "__main__":
    DATA.mkdir(parents=True, exist_ok=True)
    mixed()
    f32_only()
    rounding_sources()
    for p in sorted(DATA.glob("safetensors_*")):
        print(f"{p.name}: {p.stat().st_size} bytes")
