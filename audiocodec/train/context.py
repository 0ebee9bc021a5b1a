"""Fit the context model of the entropy coder (``bitstream/context.py``) on a split's codes.

The model gives each code of frame t a distribution from what the decoder already has: the stream's codes
of the frames before it in the chunk or packet (t-1, and t-2 .. t-HISTORY with halving weights) and the
first two rows of frame t. It is trained here in
float (torch), then ``quantize`` turns it into the integer network the coder runs, so that the encoder and
the decoder compute the same frequencies on any machine.

Codes come as (ROWS, frames) int16: row 0 the pitch symbol, then the RVQ stages (``Codec.encode`` at
``max_rows``), clips concatenated, with ``offsets`` marking each clip's first frame. A stream of n rows uses
rows 0..n-1 when it sends the pitch, else rows 1..n (``Codec.sends_pitch``)."""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..bitstream.context import HISTORY, SIZE, Weights, stream_key


class FloatContext(nn.Module):
    """The float twin of ``bitstream.context.ContextModel`` (same structure, float weights)."""

    def __init__(self, rows: int, dim: int = 64, hidden: int = 256, blocks: int = 2):
        super().__init__()
        self.rows, self.dim = rows, dim
        self.prev = nn.Embedding(rows * SIZE, dim)    # the previous frame's codes (summed)
        self.hist = nn.Embedding(rows * SIZE, dim)    # frames t-2 .. t-HISTORY (summed, weights halving)
        self.low = nn.Embedding(rows * SIZE, dim)     # this frame's first two rows (summed)
        self.query = nn.Embedding(rows, dim)          # which row is predicted
        self.stream = nn.Embedding(2 * (rows + 1), dim)  # which stream (rows, pitch or not)
        self.start = nn.Parameter(torch.zeros(dim))    # in place of the previous frame at a start
        self.up = nn.ModuleList(nn.Linear(dim, hidden) for _ in range(blocks))
        self.down = nn.ModuleList(nn.Linear(hidden, dim) for _ in range(blocks))
        self.out = nn.Embedding(rows * SIZE, dim)     # row r's code c: out[r * SIZE + c]
        self.bias = nn.Parameter(torch.zeros(rows, SIZE))
        for e in (self.prev, self.low, self.query, self.stream, self.out):
            nn.init.normal_(e.weight, std=0.3)
        nn.init.normal_(self.hist.weight, std=0.03)
        for d in self.down:
            nn.init.zeros_(d.weight)
            nn.init.zeros_(d.bias)

    def context(self, rows: list[int], past: torch.Tensor) -> torch.Tensor:
        """past (B, HISTORY, len(rows)): the codes of frames t-1 .. t-HISTORY, -1 where there is none ->
        the part of the context every row of frame t shares (B, dim)."""
        r = torch.tensor(rows)
        there = past[:, :, 0] >= 0
        emb = lambda table, k: table(r * SIZE + past[:, k].clamp(min=0)).sum(1)  # noqa: E731
        base = torch.where(there[:, :1], emb(self.prev, 0), self.start) + self.stream.weight[stream_key(rows, self.rows)]
        for k in range(1, HISTORY):
            base = base + there[:, k:k + 1] * emb(self.hist, k) * 0.5 ** (k - 1)
        return base

    def forward(self, rows: list[int], past: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
        """rows: the stream's row indices; past (B, HISTORY, len(rows)) as in ``context``; cur (B, len(rows))
        codes -> logits (B, len(rows), SIZE)."""
        r = torch.tensor(rows)
        base = self.context(rows, past)
        low1 = self.low(r[0] * SIZE + cur[:, 0])
        low2 = low1 + self.low(r[1] * SIZE + cur[:, 1])
        lows = torch.stack([torch.zeros_like(low1), low1] + [low2] * (len(rows) - 2), 1)
        h = base[:, None] + lows + self.query(r)[None]
        for up, down in zip(self.up, self.down):
            h = h + down(F.relu(up(h)))
        w = self.out.weight.view(self.rows, SIZE, self.dim)[r]  # (n, SIZE, dim)
        return torch.einsum("bnd,nsd->bns", h, w) + self.bias[r]


def stream_rows(n_rows: int, pitch: bool) -> list[int]:
    """The row indices of a stream of ``n_rows`` rows."""
    return list(range(n_rows)) if pitch else list(range(1, n_rows + 1))


def positions(offsets: np.ndarray, frames: int, reset: int = 0) -> np.ndarray:
    """Each frame's index in its segment: its clip, cut every ``reset`` frames (0: never)."""
    pos = np.arange(frames) - np.repeat(offsets[:-1], np.diff(offsets))
    return pos % reset if reset else pos


def past_of(x: torch.Tensor, rows: list[int], t: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """The codes of frames t-1 .. t-HISTORY of the stream's rows (B, HISTORY, len(rows)), -1 beyond the
    ``seen`` frames (B,) available before t."""
    k = torch.arange(1, HISTORY + 1)
    idx = (t[:, None] - k).clamp(min=0)                              # (B, HISTORY)
    past = x[rows][:, idx].permute(1, 2, 0)                          # (B, HISTORY, n)
    return torch.where((k[None] <= seen[:, None])[..., None], past, -1)


def fit(codes: np.ndarray, offsets: np.ndarray, streams: list[list[int]], minutes: float, dim: int = 64,
        hidden: int = 256, batch: int = 384, reset_share: float = 0.2, seed: int = 0, log=print) -> FloatContext:
    """Train on (ROWS, frames) codes for ``minutes`` of wall time: each step one stream, ``batch`` random
    frames, a ``reset_share`` of them without their previous frame (as at a packet's start)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = FloatContext(codes.shape[0], dim, hidden)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = torch.from_numpy(codes.astype(np.int64))
    pos = torch.from_numpy(positions(offsets, codes.shape[1]))
    t0, step, total = time.time(), 0, minutes * 60
    while (elapsed := time.time() - t0) < total:
        for g in opt.param_groups:  # cosine decay over the wall-time budget
            g["lr"] = 3e-3 * 0.5 * (1 + math.cos(math.pi * elapsed / total))
        rows = streams[step % len(streams)]
        t = torch.from_numpy(rng.integers(1, codes.shape[1], batch))
        cut = torch.from_numpy(np.where(rng.random(batch) < reset_share, rng.integers(0, HISTORY, batch), HISTORY))
        cur = x[rows][:, t].T
        logits = model(rows, past_of(x, rows, t, torch.minimum(pos[t], cut)), cur)
        loss = F.cross_entropy(logits.reshape(-1, SIZE), cur.reshape(-1)) / math.log(2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 200 == 0:
            log(f"step {step} {elapsed / 60:.1f} min  bits/code {loss.item():.3f} (rows {len(rows)})")
    return model


@torch.no_grad()
def float_bits(model: FloatContext, codes: np.ndarray, offsets: np.ndarray, rows: list[int], reset: int = 0,
               block: int = 4096) -> np.ndarray:
    """Cross-entropy of the float model, bits per code by row, context restarting at clip starts and every
    ``reset`` frames."""
    x = torch.from_numpy(codes.astype(np.int64))
    pos = torch.from_numpy(positions(offsets, codes.shape[1], reset))
    total = torch.zeros(len(rows), dtype=torch.float64)
    for s in range(0, codes.shape[1], block):
        t = torch.arange(s, min(s + block, codes.shape[1]))
        cur = x[rows][:, t].T
        logits = model(rows, past_of(x, rows, t, pos[t]), cur)
        total += F.cross_entropy(logits.transpose(1, 2), cur, reduction="none").sum(0).double()
    return (total / codes.shape[1] / math.log(2)).numpy()


def _scale(x: torch.Tensor, limit: int = 127) -> float:
    return float(x.abs().max().clamp(min=1e-8)) / limit


@torch.no_grad()
def quantize(model: FloatContext, calib: dict) -> Weights:
    """The integer network: int8 tables and matrices, per-channel requantisation multipliers, all scales
    folded into integers. ``calib``: activation ranges seen on training frames (``activation_ranges``)."""
    from ..bitstream.context import quantize_weights

    return quantize_weights({k: v.detach().numpy().astype(np.float64) for k, v in model.state_dict().items()},
                            calib, len(model.up))


@torch.no_grad()
def activation_ranges(model: FloatContext, codes: np.ndarray, offsets: np.ndarray, streams: list[list[int]],
                      frames: int = 20000, seed: int = 1) -> dict:
    """The largest |value| of each activation the integer network rescales, over ``frames`` training frames
    of every stream (a high percentile, so that rare outliers clip rather than cost every value resolution)."""
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(codes.astype(np.int64))
    pos = torch.from_numpy(positions(offsets, codes.shape[1]))
    seen: dict[str, list[torch.Tensor]] = {}

    def note(name, v):
        seen.setdefault(name, []).append(v.abs().reshape(-1, v.shape[-1]))

    for rows in streams:
        t = torch.from_numpy(rng.integers(1, codes.shape[1], frames // len(streams)))
        cut = torch.from_numpy(np.where(rng.random(len(t)) < 0.2, rng.integers(0, HISTORY, len(t)), HISTORY))
        cur = x[rows][:, t].T
        r = torch.tensor(rows)
        p = model.context(rows, past_of(x, rows, t, torch.minimum(pos[t], cut)))
        low1 = model.low(r[0] * SIZE + cur[:, 0])
        low2 = low1 + model.low(r[1] * SIZE + cur[:, 1])
        lows = torch.stack([torch.zeros_like(low1), low1] + [low2] * (len(rows) - 2), 1)
        h = p[:, None] + lows + model.query(r)[None]
        note("h0", h)
        for i, (up, down) in enumerate(zip(model.up, model.down)):
            a = F.relu(up(h))
            note(f"a{i}", a)
            h = h + down(a)
            note(f"h{i + 1}", h)
    return {k: float(torch.quantile(torch.cat(v).flatten()[:2_000_000].float(), 0.9999)) for k, v in seen.items()}


def split_codes(codec, root: str, split: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Encode a split's clips at every row, each clip from its own start as a file would be -> (codes
    (rows, frames) int16 in context-row order: row 0 the pitch (zeros for a model without one), then the
    stages; offsets: each clip's first frame, then the total)."""
    from tqdm import tqdm

    from ..audio import load
    from ..evaluation.corpus import list_clips

    parts = []
    for path in tqdm(list_clips(root, split)[:limit], desc=f"encoding the {split} split"):
        codes = codec.encode(torch.from_numpy(load(path).astype(np.float32)), codec.max_rows)[0].numpy()
        if not codec.sends_pitch(codec.max_rows):
            codes = np.concatenate([np.zeros_like(codes[:1]), codes])
        parts.append(codes.astype(np.int16))
    return np.concatenate(parts, 1), np.cumsum([0] + [p.shape[1] for p in parts])


def cached_split_codes(codec, root: str, split: str, cache: str | None = None,
                       limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``split_codes``, kept in (or read back from) the .npz ``cache`` when it holds the codes of this codec and
    at least ``limit`` clips (None: all of them)."""
    import os

    if cache and os.path.isfile(cache):
        with np.load(cache) as d:
            clips = len(d["offsets"]) - 1
            if str(d["model_id"]) == codec.model_id and (clips >= limit if limit else True):
                offsets = d["offsets"][:None if limit is None else limit + 1]
                return d["codes"][:, :offsets[-1]], offsets
    codes, offsets = split_codes(codec, root, split, limit)
    if cache:
        np.savez(cache, codes=codes, offsets=offsets, model_id=np.array(codec.model_id))
    return codes, offsets


def streams_of(codec) -> list[list[int]]:
    """The context rows of every neural mode's stream (``stream.modes``)."""
    from ..stream.modes import modes

    return [stream_rows(m.rows, codec.sends_pitch(m.rows)) for m in modes()]


def fit_for(codec, codes: np.ndarray, offsets: np.ndarray, minutes: float, log=print, check_clips: int = 20):
    """The context model for ``codec`` from its train split's codes (``split_codes``): fit, quantise, and
    refuse (CodecError) a model that does not round-trip every neural mode's codes on ``check_clips``
    clips. -> (ContextModel, what it costs: bits per code by row of each stream on those clips)."""
    from ..bitstream.context import ContextModel

    streams = streams_of(codec)
    model = fit(codes, offsets, streams, minutes, log=log)
    ctx = ContextModel(quantize(model, activation_ranges(model, codes, offsets, streams)), codec.model_id,
                       codec.cfg.pitch_from if codec.pitch is not None else 0)
    clips = np.random.default_rng(0).choice(len(offsets) - 1, check_clips, replace=False)
    return ctx, round_trip(ctx, codec, codes, offsets, clips)


def round_trip(ctx, codec, codes: np.ndarray, offsets: np.ndarray, clips) -> dict[int, np.ndarray]:
    """Check that ``ctx`` decodes what it encodes, every neural mode's codes of these clips (CodecError if
    not) -> bits per code by row of each mode's stream."""
    from ..errors import CodecError

    bits = {}
    for rows in streams_of(codec):
        n_q, total, frames = len(rows), 0.0, 0
        for c in clips:
            clip = codes[rows, offsets[c]:offsets[c + 1]].astype(np.int64)
            if not np.array_equal(ctx.decode(ctx.encode(clip), n_q, clip.shape[1]), clip):
                raise CodecError(f"the context model does not round-trip {n_q}-row codes: not shipped")
            total, frames = total + ctx.bits(clip) * clip.shape[1], frames + clip.shape[1]
        bits[n_q] = total / frames
    return bits


# --- the searched streams' model (``compress --search``) ----------------------------------------------------
SEARCH_GRID = np.array([0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])  # factors on a row's multiplier


def searched_codes(engine, wav: np.ndarray, mode, steps: int) -> np.ndarray:
    """The codes (rows, frames) int16 that ``compress --search steps`` sends for ``wav`` in ``mode``: the
    file it writes (fixed-rate, so that no entropy model is involved), read back."""
    import io

    from ..bitstream.container import read_chunks, read_header
    from ..bitstream.entropy import decode_fixed
    from ..compress import encode_blocks

    f = io.BytesIO(encode_blocks([np.asarray(wav, np.float32)], mode, engine, entropy=False, search=steps))
    h = read_header(f)
    return np.concatenate([decode_fixed(p, h.n_q, n, h.bits) for n, p, _, _ in read_chunks(f, h)], 1).astype(np.int16)


def searched_split_codes(engine, root: str, split: str, clips: int, steps: int, seed: int = 0,
                         cache: str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``clips`` random clips of a split through ``compress --search steps`` in every searchable mode ->
    {mode name: (codes (rows, frames) int16, offsets)}; kept in (or read back from) the .npz ``cache``."""
    import os

    from tqdm import tqdm

    from ..audio import load
    from ..evaluation.corpus import list_clips
    from ..stream.modes import MODES

    key = f"{engine.codec.model_id}:{split}:{clips}:{steps}:{seed}"
    if cache and os.path.isfile(cache):
        with np.load(cache) as d:
            if str(d["key"]) == key:
                return {k[:-6]: (d[k], d[k[:-6] + ":offsets"]) for k in d.files if k.endswith(":codes")}
    paths = list_clips(root, split)
    pick = np.sort(np.random.default_rng(seed).choice(len(paths), min(clips, len(paths)), replace=False))
    wavs = [load(paths[i]).astype(np.float32) for i in pick]
    out = {}
    for m in (m for m in MODES if m.searchable):
        name = f"{m.kbps:g}" + (" hybrid" if m.hybrid else "")
        parts = [searched_codes(engine, w, m, steps) for w in tqdm(wavs, desc=f"searching {name} kbps")]
        out[name] = (np.concatenate(parts, 1), np.cumsum([0] + [p.shape[1] for p in parts]))
    if cache:
        np.savez(cache, key=np.array(key), **{f"{k}:codes": c for k, (c, _) in out.items()},
                 **{f"{k}:offsets": o for k, (_, o) in out.items()})
    return out


def chunk_bits(ctx, codes: np.ndarray, offsets: np.ndarray, chunk: int) -> np.ndarray:
    """Bits by row of coding each clip of ``codes`` (n, frames) as a file does, chunk by chunk (the context
    restarting at each) -> (n,) summed over every frame."""
    total = np.zeros(len(codes))
    for a, b in zip(offsets[:-1], offsets[1:]):
        for s in range(a, b, chunk):
            part = codes[:, s:min(s + chunk, b)]
            total += ctx.bits(part) * part.shape[1]
    return total


def clips_of(codes: np.ndarray, offsets: np.ndarray, part: int, parts: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Every ``parts``-th clip of ``codes`` from clip ``part`` on -> (codes, offsets)."""
    keep = range(part, len(offsets) - 1, parts)
    pieces = [codes[:, offsets[k]:offsets[k + 1]] for k in keep]
    return np.concatenate(pieces, 1), np.cumsum([0] + [p.shape[1] for p in pieces])


def fit_searched(ctx, sets: dict, chunk: int, grid=SEARCH_GRID, log=print):
    """The context model for searched codes: each row's multiplier scaled by the factor of ``grid`` that codes
    the searched streams ``sets`` ({name: (codes, offsets)}, as ``searched_split_codes``) in the fewest bits,
    all streams that use the row together (a row's frequencies depend on its multiplier alone). The factors
    are fitted on the even clips; the odd ones, unseen, measure them. -> (the tempered ContextModel, {name:
    (bits per frame of the odd clips with ``ctx``, with the tempered model)})."""
    def scaled(factors) -> "ContextModel":
        return ctx.tempered(np.maximum(np.round(ctx.w.out_mul * factors), 1).astype(np.int64))

    bits = np.zeros((len(grid), ctx.w.rows))
    for name, (codes, offsets) in sets.items():
        codes, offsets = clips_of(codes.astype(np.int64), offsets, 0)
        rows = ctx.rows(len(codes))
        mine = np.stack([chunk_bits(scaled(f), codes, offsets, chunk) for f in grid])
        bits[:, rows] += mine
        log(f"{name}: bits per frame with every row's factor at {' / '.join(f'{f:g}' for f in grid)}: "
            f"{' / '.join(f'{b:.1f}' for b in mine.sum(1) / codes.shape[1])}")
    best = np.where(bits.any(0), grid[bits.argmin(0)], 1.0)
    tempered = scaled(best)
    log("factors by row: " + " ".join(f"{f:.2f}" for f in best))
    held = {name: clips_of(c.astype(np.int64), o, 1) for name, (c, o) in sets.items()}
    per_frame = lambda model, c, o: chunk_bits(model, c, o, chunk).sum() / c.shape[1]  # noqa: E731
    return tempered, {name: (per_frame(ctx, c, o), per_frame(tempered, c, o)) for name, (c, o) in held.items()}
