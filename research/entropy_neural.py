"""A small neural context model for the entropy-context study (issue 34), trained on one CPU thread.

For frame t and row r it predicts the 1024-way code from a GRU over the earlier frames (each frame's
rows embedded and summed) plus the embeddings of the rows below r in frame t, through one residual MLP
and an output layer tied to the row's code embedding. Each training batch is one stream (1.5 / 3 / 6 /
12 kbps, picked at random): rows outside it are neither inputs nor targets, so one model serves all
bitrates. Windows start anywhere in a clip with an empty state, as a packet that decodes alone would."""
from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import torch
from torch import nn

from audiocodec.stream.engine import load_engine
from audiocodec.stream.modes import modes

BITRATES = {m.kbps: m.rows for m in modes()}  # kbps -> rows of the neural-only modes

from entropy_context import RESETS, load_codes, stream_rows  # noqa: E402

ROWS, CODES, DIM, WINDOW, BATCH = 25, 1024, 64, 64, 16


class ContextModel(nn.Module):
    """codes (B, T, ROWS), row mask (B, ROWS) -> logits (B, T, ROWS, CODES)."""

    def __init__(self, dim: int = DIM):
        super().__init__()
        self.embed = nn.Parameter(torch.randn(ROWS, CODES, dim) * dim ** -0.5)
        self.prev_in = nn.Linear(dim, dim)
        self.gru = nn.GRU(dim, dim, batch_first=True)
        self.row = nn.Parameter(torch.zeros(ROWS, dim))
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.out_norm = nn.LayerNorm(dim)
        self.bias = nn.Parameter(torch.zeros(ROWS, CODES))

    def context(self, codes: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (per-row input (B, T, ROWS, dim) before the MLP, embeddings (B, T, ROWS, dim))."""
        e = self.embed[torch.arange(ROWS), codes] * mask[:, None, :, None]  # (B, T, R, d)
        frame = nn.functional.pad(e.sum(2), (0, 0, 1, 0))[:, :-1]  # the previous frame, zero at the start
        h, _ = self.gru(torch.tanh(self.prev_in(frame)))
        below = e.cumsum(2) - e  # rows below r in the same frame
        return h[:, :, None] + below + self.row, e

    def forward(self, codes: torch.Tensor, mask: torch.Tensor, rows: list[int] | None = None) -> torch.Tensor:
        x, _ = self.context(codes, mask)
        rows = list(range(ROWS)) if rows is None else rows
        x = x[:, :, rows]
        x = self.out_norm(x + self.mlp(self.norm(x)))
        return torch.einsum("btrd,rkd->btrk", x, self.embed[rows]) + self.bias[rows]


def stream_mask(n_q: int, sends_pitch: bool) -> torch.Tensor:
    m = torch.zeros(ROWS)
    m[stream_rows(n_q, sends_pitch)] = 1
    return m


def windows(codes: np.ndarray, pos: np.ndarray, ends: np.ndarray, starts: np.ndarray, length: int):
    """Windows of up to ``length`` frames from ``starts``, cut at their clip's end -> (codes (B, length, ROWS),
    valid (B, length) bool)."""
    idx = starts[:, None] + np.arange(length)
    valid = idx < ends[starts][:, None]
    idx = np.where(valid, idx, starts[:, None])
    return torch.from_numpy(codes[:, idx].transpose(1, 2, 0).copy()), torch.from_numpy(valid)


def clip_ends(pos: np.ndarray) -> np.ndarray:
    """For each frame, the index one past its clip's last frame."""
    starts = np.flatnonzero(pos == 0)
    ends = np.append(starts[1:], len(pos))
    return np.repeat(ends, np.diff(np.append(starts, len(pos))))


def train(model: ContextModel, codes, pos, masks: list, minutes: float, log) -> int:
    """Adam with a cosine decay over ``minutes`` of this process's CPU time (one thread); returns the number of steps."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    ends, rng = clip_ends(pos), np.random.default_rng(0)
    t0, step, avg = time.process_time(), 0, None
    while (frac := (time.process_time() - t0) / (60 * minutes)) < 1:
        for g in opt.param_groups:
            g["lr"] = 3e-3 * 0.5 * (1 + math.cos(math.pi * frac))
        x, valid = windows(codes, pos, ends, rng.integers(0, len(pos), BATCH), WINDOW)
        mask = masks[rng.integers(0, len(masks))]  # one stream per batch: only its rows are computed
        rows = mask.nonzero().flatten().tolist()
        logits = model(x, mask.expand(BATCH, ROWS), rows)
        ce = nn.functional.cross_entropy(logits.reshape(-1, CODES), x[:, :, rows].reshape(-1), reduction="none")
        loss = (ce.view(BATCH, -1, len(rows)) * valid[:, :, None]).sum() / (valid.sum() * len(rows))
        opt.zero_grad()
        loss.backward()
        opt.step()
        avg = loss.item() if avg is None else 0.98 * avg + 0.02 * loss.item()
        step += 1
        if step % 50 == 0:
            log(f"step {step} {100 * frac:.0f}% loss {avg / math.log(2):.3f} bits/code")
    return step


@torch.no_grad()
def test_bits(model: ContextModel, codes, pos, n_q: int, pitch: bool, reset: int, budget: int = 4096) -> list[float]:
    """Mean bits per code of each row of the stream on the test codes, context restarting every ``reset``
    frames. Segments go in batches of at most ``budget`` padded frames (bounded memory)."""
    rows = stream_rows(n_q, pitch)
    seg_start = np.flatnonzero((pos == 0) | ((pos % reset == 0) if reset else False))
    seg_end = np.append(seg_start[1:], len(pos))
    order = np.argsort(seg_end - seg_start)
    ends = _ends(seg_start, seg_end)
    total, count, mask = torch.zeros(len(rows)), 0, stream_mask(n_q, pitch)
    lens, i = (seg_end - seg_start)[order], 0
    while i < len(order):
        j = i + 1
        while j < len(order) and (j + 1 - i) * lens[j] <= budget:
            j += 1
        sel, length = order[i:j], int(lens[j - 1])
        x, valid = windows(codes, pos, ends, seg_start[sel], length)
        logits = model(x, mask.expand(len(sel), ROWS), rows)
        ce = nn.functional.cross_entropy(logits.reshape(-1, CODES), x[:, :, rows].reshape(-1), reduction="none")
        total += (ce.view(*x.shape[:2], len(rows)) * valid[:, :, None]).sum((0, 1))
        count += int(valid.sum())
        i = j
    return (total / count / math.log(2)).tolist()


@torch.no_grad()
def frame_bits(model: ContextModel, codes, pos, n_q: int, pitch: bool, budget: int = 4096) -> np.ndarray:
    """Bits of each test frame's codes of the stream (frames,), context over the whole clip."""
    rows = stream_rows(n_q, pitch)
    start = np.flatnonzero(pos == 0)
    end = np.append(start[1:], len(pos))
    ends, out, mask = _ends(start, end), np.zeros(len(pos)), stream_mask(n_q, pitch)
    for i in range(0, len(start), max(1, budget // int((end - start).max()))):
        sel = np.arange(i, min(len(start), i + max(1, budget // int((end - start).max()))))
        x, valid = windows(codes, pos, ends, start[sel], int((end[sel] - start[sel]).max()))
        logits = model(x, mask.expand(len(sel), ROWS), rows)
        ce = nn.functional.cross_entropy(logits.transpose(1, 3), x[:, :, rows].transpose(1, 2), reduction="none")
        bits = (ce.sum(1) / math.log(2)).numpy()  # (B, T)
        for b, k in enumerate(sel):
            out[start[k]:end[k]] = bits[b, :end[k] - start[k]]
    return out


def breakdown(folder: str, data: str) -> None:
    """Saving of the neural model by the clip's source and by the frame's pitch (voiced or not)."""
    torch.set_num_threads(1)
    codec = load_engine().codec
    codes, pos = load_codes(folder, "test")
    model = ContextModel()
    model.load_state_dict(torch.load(os.path.join(folder, "neural.pt"), weights_only=True))
    model.eval()
    source = np.array(_clip_sources(data, "test"))[np.cumsum(pos == 0) - 1]
    groups = {f"source {s}": source == s for s in np.unique(source)}
    groups |= {"voiced frames": codes[0] > 0, "unvoiced or silent frames": codes[0] == 0}
    print("| frames | share | " + " | ".join(f"{k:g} kbps" for k in BITRATES) + " |\n|---|---|---|---|---|---|")
    bits = {k: frame_bits(model, codes, pos, n_q, codec.sends_pitch(n_q)) for k, n_q in BITRATES.items()}
    for name, sel in groups.items():
        cells = [f"{100 * (1 - bits[k][sel].mean() / (10 * n_q)):.1f} %" for k, n_q in BITRATES.items()]
        print(f"| {name} | {100 * sel.mean():.0f} % | " + " | ".join(cells) + " |")


def last_step(log_path: str) -> int | None:
    """The last training step the log names (None without one)."""
    steps = [int(line.split()[1]) for line in open(log_path) if line.startswith("step ")]
    return steps[-1] if steps else None


def _ends(seg_start: np.ndarray, seg_end: np.ndarray) -> np.ndarray:
    """For each frame, one past the end of its segment."""
    return np.repeat(seg_end, seg_end - seg_start)


class Stepper:
    """The decoder's view: one frame at a time, rows in order, in NumPy float32 (what a product would run)."""

    def __init__(self, model: ContextModel):
        g = {k: v.detach().numpy() for k, v in model.state_dict().items()}
        self.g = g
        self.h = np.zeros(DIM, np.float32)

    @staticmethod
    def _ln(x, w, b):
        x = x - x.mean()
        return x / np.sqrt((x * x).mean() + 1e-5) * w + b

    def frame(self, prev: np.ndarray | None, codes: np.ndarray, rows: list[int]) -> np.ndarray:
        """prev: the previous frame's codes (ROWS,) or None at a start; codes: this frame's (the decoder learns
        each row's before the next) -> the row's probabilities (len(rows), CODES)."""
        g = self.g
        x = np.zeros(DIM, np.float32) if prev is None else g["embed"][rows, prev[rows]].sum(0)
        x = np.tanh(g["prev_in.weight"] @ x + g["prev_in.bias"])
        gi = g["gru.weight_ih_l0"] @ x + g["gru.bias_ih_l0"]
        gh = g["gru.weight_hh_l0"] @ self.h + g["gru.bias_hh_l0"]
        r, z = [1 / (1 + np.exp(-(gi[i * DIM:(i + 1) * DIM] + gh[i * DIM:(i + 1) * DIM]))) for i in (0, 1)]
        n = np.tanh(gi[2 * DIM:] + r * gh[2 * DIM:])
        self.h = (1 - z) * n + z * self.h
        below, probs = np.zeros(DIM, np.float32), []
        for row in rows:
            v = self.h + below + g["row"][row]
            u = self._ln(v, g["norm.weight"], g["norm.bias"])
            u = g["mlp.0.weight"] @ u + g["mlp.0.bias"]
            u = g["mlp.2.weight"] @ (0.5 * u * (1 + np.tanh(0.79788456 * (u + 0.044715 * u ** 3)))) + g["mlp.2.bias"]
            v = self._ln(v + u, g["out_norm.weight"], g["out_norm.bias"])
            logits = g["embed"][row] @ v + g["bias"][row]
            p = np.exp(logits - logits.max())
            probs.append(p / p.sum())
            below += g["embed"][row, codes[row]]
        return np.stack(probs)


def timing(model: ContextModel, codes: np.ndarray, n_q: int, pitch: bool, frames: int = 300) -> dict:
    """ms per frame on one thread: the decoder (frame by frame, row by row, NumPy), the encoder (all frames
    of a 10 s chunk at once, torch), and constriction coding the rows with those probabilities."""
    import constriction

    rows = stream_rows(n_q, pitch)
    step, prev, probs = Stepper(model), None, []
    t0 = time.perf_counter()
    for t in range(frames):
        probs.append(step.frame(prev, codes[:, t], rows))
        prev = codes[:, t]
    dec = (time.perf_counter() - t0) / frames * 1e3
    x = torch.from_numpy(codes[:, :500].T.copy())[None]
    t0 = time.perf_counter()
    with torch.no_grad():
        torch.softmax(model(x, stream_mask(n_q, pitch)[None], rows), -1)
    enc = (time.perf_counter() - t0) / 500 * 1e3
    p = np.concatenate(probs).astype(np.float64)
    sym = codes[rows, :frames].T.reshape(-1).astype(np.int32)
    family = constriction.stream.model.Categorical(perfect=False)
    t0 = time.perf_counter()
    coder = constriction.stream.queue.RangeEncoder()
    coder.encode(sym, family, p)
    words = coder.get_compressed()
    rc = (time.perf_counter() - t0) / frames * 1e3
    return {"decoder_ms": dec, "encoder_ms": enc, "range_coder_ms": rc, "bits_per_code_coded": 32 * len(words) / len(sym)}


def run(folder: str, minutes: float) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    codec = load_engine().codec
    train_codes, train_pos = load_codes(folder, "train")
    test_codes, test_pos = load_codes(folder, "test")
    logf = open(os.path.join(folder, "neural.log"), "a")

    def log(msg: str) -> None:
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    masks = [stream_mask(n_q, codec.sends_pitch(n_q)) for n_q in BITRATES.values()]
    model, weights = ContextModel(), os.path.join(folder, "neural.pt")
    if os.path.exists(weights):  # trained before: measure it again
        model.load_state_dict(torch.load(weights, weights_only=True))
        steps = last_step(os.path.join(folder, "neural.log"))
    else:
        steps = train(model, train_codes, train_pos, masks, minutes, log)
        torch.save(model.state_dict(), weights)
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    res = {"params": params, "steps": steps, "minutes": minutes, "bits": {}, "timing": {}}
    for reset in RESETS:
        for kbps, n_q in BITRATES.items():
            bits = test_bits(model, test_codes, test_pos, n_q, codec.sends_pitch(n_q), reset)
            res["bits"].setdefault(str(reset), {})[f"{kbps:g}"] = bits
            log(f"reset {reset} {kbps:g} kbps: {sum(bits):.1f} bits/frame, rows " + " ".join(f"{b:.2f}" for b in bits))
    for kbps, n_q in BITRATES.items():
        res["timing"][f"{kbps:g}"] = timing(model, test_codes, n_q, codec.sends_pitch(n_q))
        log(f"timing {kbps:g} kbps: {res['timing'][f'{kbps:g}']}")
    with open(os.path.join(folder, "neural.json"), "w") as f:
        json.dump(res, f)


def _clip_sources(root: str, split: str) -> list[str]:
    """The source corpus of each of a split's clips, in manifest order."""
    from audiocodec.evaluation.corpus import manifest_rows

    return [row.get("source") or "" for row in manifest_rows(root, split)]
