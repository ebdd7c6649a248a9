"""Writes small torch.save checkpoints for tests/io/test_torch_checkpoint.cpp, and the values a loader must return.

Files (in tests/reference/data/):
  torch_plain.pt        plain state dict: float32, float16, bfloat16, float64, int64 (exact) and bool tensors,
                        a 0-d scalar, an empty tensor, a transposed (non-contiguous) view, two views sharing one
                        storage (one at a storage offset), a strided slice; plus a non-tensor entry (an int)
  torch_ordered.pt      an nn.Module's state_dict() (an OrderedDict with _metadata) of a small Linear+LayerNorm
  torch_nested.pt       {"model_state": {"module.model.<name>": ...}, "epoch": 3, "optimizer_state": {...},
                        "cfg": "..."}: the Open-VCLIP / FROSTER layout, with DataParallel and wrapper prefixes
  torch_protocol4.pt    the plain state dict again, pickled with protocol 4 (FRAME, MEMOIZE, SHORT_BINUNICODE)
  torch_jit.pt          a TorchScript module (torch.jit.save): its attributes give the state_dict() names
  torch_int_inexact.pt  an int64 tensor holding 2**24 + 1 (float32 cannot represent it: must be an error)
  torch_legacy.pt       the pre-1.6 (non-zip) format (must be refused with a clear message)
  torch_expected.fxt    expected fp32 values, one entry "<file stem>/<tensor name>" per tensor (names after
                        prefix stripping), in the format of tests/support/fixtures.hpp (0-d tensors are
                        stored with extents [1] there)

Run from the repository root:  python3 tests/reference/make_torch_checkpoint_fixtures.py
Checkpoint bytes depend on the torch version and a random serialization id; the expected values do not.
"""
import os
import pathlib
import sys
from collections import OrderedDict

import torch

sys.path.insert(0, os.path.dirname(__file__))
from make_fixtures import Writer as FixtureWriter  # noqa: E402  (the FRSTFIX writer of the other fixtures)

DATA = os.path.join(os.path.dirname(__file__), "data")


def plain_state_dict():
    g = torch.Generator().manual_seed(4)
    base = torch.randn(4, 6, generator=g)
    shared = torch.randn(20, generator=g)
    sd = OrderedDict()
    sd["f32"] = torch.randn(3, 5, generator=g)
    sd["f16"] = torch.randn(2, 3, 4, generator=g).half()
    sd["bf16"] = torch.randn(7, generator=g).bfloat16()
    sd["f64"] = torch.randn(2, 2, generator=g).double()
    sd["i64"] = torch.tensor([[0, -3, 16777216], [5, 77, -16777216]], dtype=torch.int64)
    sd["bool"] = torch.tensor([True, False, True])
    sd["scalar"] = torch.tensor(2.6592600)            # like CLIP's logit_scale: 0-d
    sd["empty"] = torch.zeros(0, 3)
    sd["transposed"] = base.t()                       # strides (1, 6): non-contiguous
    sd["shared_a"] = shared[:12].view(3, 4)           # two views of one storage ...
    sd["shared_b"] = shared[8:].view(2, 6)            # ... the second at storage offset 8
    sd["strided"] = base[::2, 1::3]                   # strides (12, 3), offset 1
    sd["half_t"] = torch.randn(3, 2, generator=g).half().t()
    return sd


def add_expected(w, stem, sd, strip=""):
    for name, t in sd.items():
        if isinstance(t, torch.Tensor):
            w.add(f"{stem}/{name[len(strip):]}", t.detach().float().contiguous())


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(4, 3)
        self.norm = torch.nn.LayerNorm(3)
        self.scale = torch.nn.Parameter(torch.ones([]) * 4.6052)
        self.register_buffer("position_ids", torch.arange(5).unsqueeze(0))

    def forward(self, x):
        return self.norm(self.proj(x)) * self.scale + self.position_ids[:, :3].float()


def main():
    torch.manual_seed(0)
    w = FixtureWriter()

    sd = plain_state_dict()
    plain = OrderedDict(sd)
    plain["step"] = 12  # a non-tensor entry: skipped, and reported
    torch.save(plain, os.path.join(DATA, "torch_plain.pt"))
    add_expected(w, "torch_plain", sd)
    torch.save(plain, os.path.join(DATA, "torch_protocol4.pt"), pickle_protocol=4)

    m = Tiny()
    ordered = m.state_dict()
    torch.save(ordered, os.path.join(DATA, "torch_ordered.pt"))
    add_expected(w, "torch_ordered", ordered)

    inner = OrderedDict(("module.model." + k, v) for k, v in m.state_dict().items())
    nested = {
        "epoch": 3,
        "model_state": inner,
        "optimizer_state": {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 0.1, "params": [0]}]},
        "cfg": "TRAIN:\n  BATCH_SIZE: 8\n",
    }
    torch.save(nested, os.path.join(DATA, "torch_nested.pt"))
    add_expected(w, "torch_nested", inner, strip="module.model.")

    scripted = torch.jit.script(m)
    scripted.save(os.path.join(DATA, "torch_jit.pt"))
    add_expected(w, "torch_jit", m.state_dict())

    torch.save({"big": torch.tensor([16777217], dtype=torch.int64)}, os.path.join(DATA, "torch_int_inexact.pt"))
    torch.save({"w": torch.ones(2)}, os.path.join(DATA, "torch_legacy.pt"), _use_new_zipfile_serialization=False)

    w.write(pathlib.Path(DATA) / "torch_expected.fxt")
    # The pickles on their own seed the fuzzer (tests/fuzz/corpus/pickle).
    import zipfile
    corpus = os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus", "pickle")
    os.makedirs(corpus, exist_ok=True)
    for stem in ["torch_plain", "torch_ordered", "torch_nested", "torch_protocol4", "torch_jit"]:
        with zipfile.ZipFile(os.path.join(DATA, stem + ".pt")) as z:
            name = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
            with open(os.path.join(corpus, "seed_" + stem), "wb") as f:
                f.write(z.read(name))


if __name__ == "__main__":
    main()
