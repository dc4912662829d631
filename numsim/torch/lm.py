"""A small character-level transformer language model and an offline corpus, for the examples and
benchmarks of numsim.torch (nothing is downloaded: the text is the source of Python standard-library
modules shipped with the interpreter)."""
from __future__ import annotations

import importlib.util

import numpy as np

from ..errors import bad

CORPUS_MODULES = ("textwrap", "string", "heapq", "bisect", "fnmatch", "colorsys", "shlex", "queue")


def stdlib_corpus(modules=CORPUS_MODULES, max_chars=None) -> str:
    """The concatenated source text of standard-library modules (a fixed, offline corpus)."""
    parts = []
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            raise bad("modules", "names of pure-Python standard-library modules", repr(name))
        with open(spec.origin, encoding="utf-8") as f:
            parts.append(f.read())
    text = "\n".join(parts)
    return text[:max_chars] if max_chars else text


def encode_text(text):
    """(token ids int64 array, vocabulary string): one token per distinct character."""
    vocab = "".join(sorted(set(text)))
    lut = {c: i for i, c in enumerate(vocab)}
    return np.fromiter((lut[c] for c in text), dtype=np.int64, count=len(text)), vocab


def batches(ids, context, batch, steps, seed=0):
    """`steps` batches of (inputs, next-character targets), each (batch, context), windows drawn at
    random (seeded) from `ids`."""
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        start = rng.integers(0, len(ids) - context - 1, size=batch)
        idx = start[:, None] + np.arange(context)[None, :]
        yield ids[idx], ids[idx + 1]


def char_lm(vocab_size, d_model=32, heads=4, layers=2, ff=64, context=32, seed=0):
    """Embedding + learned positions, `layers` nn.TransformerEncoderLayer (causal, pre-norm, no
    dropout), a linear head: every GEMM is inside F.linear or the attention's SDPA."""
    import torch

    nn = torch.nn

    class CharLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab_size, d_model)
            self.pos = nn.Parameter(torch.zeros(context, d_model))
            self.blocks = nn.ModuleList(nn.TransformerEncoderLayer(d_model, heads, ff, dropout=0.0, batch_first=True,
                                                                   norm_first=True) for _ in range(layers))
            self.norm = nn.LayerNorm(d_model)
            self.head = nn.Linear(d_model, vocab_size)
            self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(context), persistent=False)

        def forward(self, tokens):
            t = tokens.shape[1]
            h = self.embed(tokens) + self.pos[:t]
            for blk in self.blocks:
                h = blk(h, src_mask=self.mask[:t, :t], is_causal=True)
            return self.head(self.norm(h))

    torch.manual_seed(seed)
    return CharLM()
