#!/usr/bin/env python3
"""Writes the PyTorch parity fixtures that tests/distillation/test_parity.cpp compares froster against.

Every value (inputs, weights, outputs, gradients) is float32 computed by PyTorch on the CPU, the gradients by
autograd, from fixed seeds. The binary format is documented at the top of tests/support/fixtures.hpp; keep
FORMAT_VERSION equal to `Fixture::version` there.

    pip install torch numpy
    python3 tests/reference/make_fixtures.py        # rewrites tests/reference/data/distillation.fxt
"""

import math
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

FORMAT_VERSION = 1
OUT = Path(__file__).resolve().parent / "data" / "distillation.fxt"

# Small odd shapes: nothing divides a SIMD width, so vectorised kernels also run their remainder loops.
ROWS, DIM, HIDDEN, CLASSES = 7, 13, 19, 11
CLIPS, FRAMES, CHANNELS = 3, 4, 5
ALPHA = 0.1


class Writer:
    def __init__(self):
        self.entries = []
        self.names = set()

    def add(self, name, value):
        """Adds a float32 or int64 tensor, or a Python int (int64) or float (float64) stored with extents [1]."""
        assert name not in self.names, name
        self.names.add(name)
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        elif isinstance(value, bool):
            raise TypeError(f"{name}: store a bool as an int")
        elif isinstance(value, int):
            value = np.array([value], dtype=np.int64)
        elif isinstance(value, float):
            value = np.array([value], dtype=np.float64)
        else:
            raise TypeError(f"{name}: unsupported value {value!r}")
        value = value.reshape(-1) if value.ndim == 0 else value
        dtype = {np.dtype(np.float32): 0, np.dtype(np.float64): 1, np.dtype(np.int64): 2}[value.dtype]
        assert dtype == 2 or np.all(np.isfinite(value)), f"{name} is not finite"
        self.entries.append((name, dtype, np.ascontiguousarray(value)))

    def write(self, path):
        out = bytearray(b"FRSTFIX\0")
        out += struct.pack("<II", FORMAT_VERSION, len(self.entries))
        for name, dtype, array in self.entries:
            encoded = name.encode("utf-8")
            out += struct.pack("<I", len(encoded)) + encoded
            out += struct.pack("<BB", dtype, array.ndim)
            out += struct.pack(f"<{array.ndim}q", *array.shape)
            out += array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(out))
        return len(out)


def leaf(*shape, gen, scale=1.0):
    return (torch.randn(*shape, generator=gen) * scale).requires_grad_(True)


def normalize(x):
    return x / x.norm(dim=-1, keepdim=True)


def projector(z, w1, w2, alpha=ALPHA):
    return z + alpha * F.linear(F.gelu(F.linear(z, w1)), w2)  # exact erf GELU, no biases


def add_projector(w, prefix, hidden, seed):
    g = torch.Generator().manual_seed(seed)
    z = leaf(ROWS, DIM, gen=g)
    w1 = leaf(hidden, DIM, gen=g, scale=math.sqrt(2.0 / DIM))
    w2 = leaf(DIM, hidden, gen=g, scale=0.5)  # non-zero, so the residual branch and its gradients are exercised
    dh = torch.randn(ROWS, DIM, generator=g)
    h = projector(z, w1, w2)
    h.backward(dh)
    for name, value in [("z", z), ("w1", w1), ("w2", w2), ("dh", dh), ("h", h), ("dz", z.grad), ("dw1", w1.grad),
                        ("dw2", w2.grad)]:
        w.add(f"{prefix}/{name}", value)
    w.add(f"{prefix}/alpha", ALPHA)


def add_normalize(w, seed):
    g = torch.Generator().manual_seed(seed)
    x = leaf(ROWS, DIM, gen=g)
    dy = torch.randn(ROWS, DIM, generator=g)
    y = normalize(x)
    y.backward(dy)
    for name, value in [("x", x), ("dy", dy), ("y", y), ("dx", x.grad)]:
        w.add(f"normalize/{name}", value)


def add_pair_loss(w, prefix, loss_fn, a, b):
    """A loss of two [rows, cols] inputs: stores a, b, the loss and both gradients."""
    loss = loss_fn(a, b)
    loss.backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all(), f"{prefix}: non-finite gradient"
    for name, value in [("a", a), ("b", b), ("loss", loss), ("da", a.grad), ("db", b.grad)]:
        w.add(f"{prefix}/{name}", value)


def cosine_loss(a, b):
    return (1 - F.cosine_similarity(a, b, dim=-1)).mean()


def kl_loss(temperature):
    def fn(s, t):
        return F.kl_div(F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1),
                        reduction="batchmean", log_target=True) * temperature * temperature
    return fn


def add_losses(w, seed):
    g = torch.Generator().manual_seed(seed)
    add_pair_loss(w, "cosine", cosine_loss, leaf(ROWS, DIM, gen=g), leaf(ROWS, DIM, gen=g))

    # A zero student row: PyTorch clamps its norm to eps, giving cos 0 and the finite gradient
    # -b / (eps ||b|| rows), about 1e7.
    a = torch.randn(ROWS, DIM, generator=g)
    a[3].zero_()
    add_pair_loss(w, "cosine_zero_row", cosine_loss, a.requires_grad_(True), leaf(ROWS, DIM, gen=g))
    w.add("cosine_zero_row/row", 3)

    add_pair_loss(w, "mse", F.mse_loss, leaf(ROWS, DIM, gen=g), leaf(ROWS, DIM, gen=g))
    add_pair_loss(w, "l1", F.l1_loss, leaf(ROWS, DIM, gen=g), leaf(ROWS, DIM, gen=g))

    for temperature, prefix in [(2.0, "kl_t2"), (1.0, "kl_t1")]:
        add_pair_loss(w, prefix, kl_loss(temperature), leaf(ROWS, CLASSES, gen=g, scale=3.0),
                      leaf(ROWS, CLASSES, gen=g, scale=3.0))
        w.add(f"{prefix}/temperature", temperature)

    logits = leaf(ROWS, CLASSES, gen=g, scale=2.0)
    labels = torch.randint(0, CLASSES, (ROWS,), generator=g, dtype=torch.int64)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    for name, value in [("logits", logits), ("labels", labels), ("loss", loss), ("dlogits", logits.grad)]:
        w.add(f"cross_entropy/{name}", value)

    logits = leaf(ROWS, CLASSES, gen=g, scale=2.0)
    probs = F.softmax(torch.randn(ROWS, CLASSES, generator=g) * 2.0, dim=-1)
    loss = F.cross_entropy(logits, probs)
    loss.backward()
    for name, value in [("logits", logits), ("targets", probs), ("loss", loss), ("dlogits", logits.grad)]:
        w.add(f"soft_cross_entropy/{name}", value)


def add_similarity(w, seed):
    g = torch.Generator().manual_seed(seed)
    img = leaf(ROWS, DIM, gen=g)
    txt = leaf(CLASSES, DIM, gen=g)
    logit_scale = torch.tensor(math.log(1 / 0.07), dtype=torch.float32, requires_grad=True)
    dlogits = torch.randn(ROWS, CLASSES, generator=g)
    logits = logit_scale.exp() * normalize(img) @ normalize(txt).t()
    logits.backward(dlogits)
    for name, value in [("image", img), ("text", txt), ("logit_scale", logit_scale), ("dlogits", dlogits),
                        ("logits", logits), ("dimage", img.grad), ("dtext", txt.grad),
                        ("dlogit_scale", logit_scale.grad)]:
        w.add(f"similarity/{name}", value)


def add_pooling(w, seed):
    g = torch.Generator().manual_seed(seed)
    for mode in ["mean", "max"]:
        # A random permutation: distinct values, so max has no ties and its gradient is unambiguous.
        x = (torch.randperm(CLIPS * FRAMES * CHANNELS, generator=g).float() / 7.0 - 4.0)
        x = x.reshape(CLIPS * FRAMES, CHANNELS).requires_grad_(True)
        dy = torch.randn(CLIPS, CHANNELS, generator=g)
        clips = x.view(CLIPS, FRAMES, CHANNELS)
        y = clips.mean(1) if mode == "mean" else clips.max(1).values
        y.backward(dy)
        for name, value in [("x", x), ("dy", dy), ("y", y), ("dx", x.grad)]:
            w.add(f"pool_{mode}/{name}", value)
        w.add(f"pool_{mode}/frames", FRAMES)


def add_distiller(w, seed):
    g = torch.Generator().manual_seed(seed)
    weight = 2.0
    student = leaf(ROWS, DIM, gen=g)
    teacher = torch.randn(ROWS, DIM, generator=g)  # frozen: no gradient
    w1 = leaf(HIDDEN, DIM, gen=g, scale=math.sqrt(2.0 / DIM))
    w2 = leaf(DIM, HIDDEN, gen=g, scale=0.5)
    h = projector(normalize(student), w1, w2)
    loss = weight * (1 - F.cosine_similarity(h, normalize(teacher), dim=-1)).mean()
    loss.backward()
    for name, value in [("student", student), ("teacher", teacher), ("w1", w1), ("w2", w2), ("loss", loss),
                        ("dstudent", student.grad), ("dw1", w1.grad), ("dw2", w2.grad)]:
        w.add(f"distiller/{name}", value)
    w.add("distiller/weight", weight)
    w.add("distiller/alpha", ALPHA)


def main():
    torch.set_default_dtype(torch.float32)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)  # every case draws from its own seeded generator; this only guards against a slip
    w = Writer()
    add_projector(w, "projector", DIM, seed=1)
    add_projector(w, "projector_wide", HIDDEN, seed=2)
    add_normalize(w, seed=3)
    add_losses(w, seed=4)
    add_similarity(w, seed=5)
    add_pooling(w, seed=6)
    add_distiller(w, seed=7)
    size = w.write(OUT)
    print(f"wrote {OUT} ({len(w.entries)} entries, {size} bytes) with torch {torch.__version__}")


if __name__ == "__main__":
    main()
