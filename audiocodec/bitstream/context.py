"""Context-model entropy coding: each code gets a distribution from what the decoder already has.

For frame t of a stream with rows R (row 0 the pitch symbol, rows 1.. the RVQ stages), the context is a sum
of embeddings: of frame t-1's codes (a learned start vector at a chunk's or a packet's first frame), of the
codes of frames t-2 .. t-HISTORY (weights halving with each frame back; none before the chunk's or
packet's start), of which stream it is and which row is predicted, and for rows after the first, of the
first (and second) row of frame t. So a decoder decodes a frame in three steps: R[0], then R[1], then every other
row at once. A small residual MLP maps the context to 1024 logits, which an exp table turns into integer
frequencies summing to 2^16 (every code at least 1: any code stays codable); constriction's range coder
codes them (``ContextModel.encode``/``decode``).

The network is integer from the codes to the frequencies: int8 tables and matrices, per-channel
multipliers and shifts in place of float scales, so that the encoder and the decoder compute the same
frequencies on any machine and thread count. The products run through float32 matrix products, which are
exact here: every operand is an integer below 128 in magnitude and no sum exceeds 2^24 (checked when the
weights are made). The weights are fitted by ``audiocodec/train/context.py`` (``scripts/export.py``).
No torch."""
from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, replace

import numpy as np

from ..errors import CodecError
from .container import FormatError

SIZE = 1024                 # codes per row (1024-entry codebooks; the pitch row uses fewer)
SHIFT = 24                  # fixed-point multipliers are in units of 2^-SHIFT
STEPS_PER_NAT = 16          # the exp table's resolution
TABLE = STEPS_PER_NAT * 9   # exp(-9) * 2^13 ~ 1: beyond that a code gets the minimum frequency (1)
TOP = 1 << 13               # the most likely code's frequency; a row's frequencies sum below 2^23
EXACT = 1 << 24             # float32 sums of integers are exact below this
HISTORY = 6                 # frames t-1 .. t-HISTORY are context
OLDER = 1 << (HISTORY - 2)  # integer weight of frame t-2 (t-k: 2^(HISTORY-k)); every other term is scaled by it


def stream_key(rows, n_rows_max: int) -> int:
    """The index of a stream's embedding: its row count, and whether it starts with the pitch row."""
    return len(rows) + (n_rows_max + 1) * int(rows[0] == 0)


@dataclass
class Weights:
    """The integer network (see the module docstring). Embedding tables are int8 in one common scale; the
    small ones (query, stream, start) int32 in that scale."""
    prev: np.ndarray          # (rows * SIZE, dim) int8: frame t-1
    hist: np.ndarray          # (rows * SIZE, dim) int8: frames t-2 .. t-HISTORY
    low: np.ndarray           # (rows * SIZE, dim) int8
    query: np.ndarray         # (rows, dim) int32
    stream: np.ndarray        # (2 * (rows + 1), dim) int32
    start: np.ndarray         # (dim,) int32
    h0_mul: np.ndarray        # () int64: context sum -> int8 activation
    up: list                  # per block: (H, dim) int8
    up_bias: list             # (H,) int64, in the accumulator's scale << SHIFT
    up_mul: list              # (H,) int64
    down: list                # (dim, H) int8
    down_bias: list           # (dim,) int64, in units of the next activation << SHIFT
    down_mul: list            # (dim,) int64
    res_mul: list             # () int64: the residual's rescale
    out: np.ndarray           # (rows * SIZE, dim) int8
    out_bias: np.ndarray      # (rows, SIZE) int64, in the logits' scale
    out_mul: np.ndarray       # (rows,) int64: logit units -> exp-table steps
    exp_table: np.ndarray     # (TABLE,) int64

    @property
    def rows(self) -> int:
        return len(self.query)

    def arrays(self) -> dict[str, np.ndarray]:
        d = {k: getattr(self, k) for k in ("prev", "hist", "low", "query", "stream", "start", "h0_mul", "out", "out_bias",
                                           "out_mul", "exp_table")}
        for k in ("up", "up_bias", "up_mul", "down", "down_bias", "down_mul", "res_mul"):
            d.update({f"{k}{i}": v for i, v in enumerate(getattr(self, k))})
        return d

    @staticmethod
    def from_arrays(d: dict) -> "Weights":
        blocks = sum(1 for k in d if k.startswith("up_mul"))
        lists = {k: [np.asarray(d[f"{k}{i}"]) for i in range(blocks)]
                 for k in ("up", "up_bias", "up_mul", "down", "down_bias", "down_mul", "res_mul")}
        return Weights(**{k: np.asarray(d[k]) for k in ("prev", "hist", "low", "query", "stream", "start", "h0_mul", "out",
                                                        "out_bias", "out_mul", "exp_table")}, **lists)

    def check(self) -> None:
        """Refuse weights whose products could leave float32's exact range (or the expected types)."""
        dim = self.prev.shape[1]
        for name, m in [("prev", self.prev), ("hist", self.hist), ("low", self.low), ("out", self.out), *[("up", u) for u in self.up],
                        *[("down", w) for w in self.down]]:
            if m.dtype != np.int8 or np.abs(m.astype(np.int32)).max() > 127:
                raise CodecError(f"context model: {name} is not int8")
        inner = max([dim] + [u.shape[0] for u in self.up])
        if 127 * 127 * inner >= EXACT:
            raise CodecError("context model: layers too wide for exact float32 products")
        if np.abs(self.out_bias).max() + 127 * 127 * dim >= EXACT // 2:
            raise CodecError("context model: output biases out of exact range")
        t = self.exp_table
        if len(t) != TABLE or t.min() < 1 or t.max() > TOP:
            raise CodecError("context model: bad exp table")


def _requant(acc: np.ndarray, mul, bias=0, lo: int = -127, hi: int = 127) -> np.ndarray:
    """round(acc * mul / 2^SHIFT + bias / 2^SHIFT), clipped: integer arithmetic only."""
    x = acc.astype(np.int64) * mul + bias
    x += 1 << (SHIFT - 1)
    x >>= SHIFT
    np.maximum(x, lo, out=x)
    return np.minimum(x, hi, out=x)


def _matmul(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """a (..., k) @ w.T (n, k) for small integers, exactly (see the module docstring)."""
    return (a.astype(np.float32) @ w.T.astype(np.float32)).astype(np.int64)


class ContextModel:
    """The context model fitted for one codec (``model_id``, whose streams of at least ``pitch_from`` rows
    start with the pitch row; 0: none do); ``id``: the first 8 bytes of its weights' SHA-256, which files and
    packets name it by."""

    def __init__(self, weights: Weights, model_id: str, pitch_from: int):
        weights.check()
        self.w, self.model_id, self.pitch_from = weights, model_id, int(pitch_from)
        self._out_t = weights.out.astype(np.float32).reshape(weights.rows, SIZE, -1).transpose(0, 2, 1).copy()
        self._bias = weights.out_bias.astype(np.float32)
        self._mul = _multipliers(weights.out_mul)
        self._table = weights.exp_table.astype(np.float32)
        self._up = [u.astype(np.float32) for u in weights.up]
        self._down = [d.astype(np.float32) for d in weights.down]
        self.id = _weights_id(weights)
        import constriction

        self._family = constriction.stream.model.Categorical(perfect=False)

    # --- files -------------------------------------------------------------------------------------------
    @staticmethod
    def load(path: str) -> "ContextModel":
        try:
            with np.load(path, allow_pickle=False) as d:
                return ContextModel(Weights.from_arrays(dict(d)), str(d["model_id"]), int(d["pitch_from"]))
        except (OSError, KeyError, ValueError, TypeError, IndexError) as exc:
            raise CodecError(f"{path}: cannot read context model ({exc})") from None

    def save(self, path: str) -> None:
        np.savez_compressed(path, model_id=np.array(self.model_id), pitch_from=np.array(self.pitch_from),
                            **self.w.arrays())

    def rows(self, n_q: int) -> list[int]:
        """The rows of an ``n_q``-row stream: 0..n_q-1 when it starts with the pitch, else 1..n_q (row 0 is
        the pitch symbol, row 1 + i RVQ stage i)."""
        pitch = 0 < self.pitch_from <= n_q
        if not 2 <= n_q <= self.w.rows - (0 if pitch else 1):
            raise CodecError(f"the context model codes streams of 2..{self.w.rows - 1} rows, not {n_q}")
        return list(range(n_q)) if pitch else list(range(1, n_q + 1))

    def tempered(self, out_mul: np.ndarray) -> "ContextModel":
        """The same network with each row's logit multiplier replaced (``out_mul``, (rows,) integers): the
        model for codes less predictable than those it was fitted on (``compress --search``'s; a smaller
        multiplier is a higher temperature, flatter frequencies). A model of its own, with its own id."""
        out_mul = np.asarray(out_mul)
        if out_mul.shape != self.w.out_mul.shape or out_mul.dtype.kind not in "iu" or out_mul.min() < 1 \
                or out_mul.max() > self.w.out_mul.max() * 4:
            raise CodecError("context model: bad row multipliers for a tempered model")
        twin = copy.copy(self)  # the tables, checked and converted once, are shared: tempering leaves them as they are
        twin.w = replace(self.w, out_mul=out_mul.astype(np.int64))
        twin._mul, twin.id = _multipliers(twin.w.out_mul), _weights_id(twin.w)
        return twin

    # --- the network -------------------------------------------------------------------------------------
    def _mlp(self, h: np.ndarray) -> np.ndarray:
        """Context sums (..., dim) in the embeddings' scale -> the last activation (int8 range)."""
        w = self.w
        h = _requant(h, w.h0_mul)
        for i, (up, down) in enumerate(zip(self._up, self._down)):
            a = _requant((h.astype(np.float32) @ up.T).astype(np.int64), w.up_mul[i], w.up_bias[i], 0, 127)
            d = (a.astype(np.float32) @ down.T).astype(np.int64)
            h = _requant(d, w.down_mul[i], w.down_bias[i] + h * w.res_mul[i])
        return h

    def _probabilities(self, h: np.ndarray, rows: slice) -> np.ndarray:
        """Last activations (m, n, dim) of the n rows ``rows`` (a slice: a stream's rows are consecutive) for
        m frames -> probabilities (m, n, SIZE): integer frequencies (the exp table's, at least 1) over their
        sum. Only exact or correctly rounded float32 operations, which give the same bits on every machine."""
        steps = np.matmul(h.transpose(1, 0, 2).astype(np.float32), self._out_t[rows])  # (n, m, SIZE), exact
        steps += self._bias[rows][:, None]
        np.subtract(steps.max(2, keepdims=True), steps, out=steps)   # exact: integers below 2^24
        steps *= self._mul[rows][:, None, None]                       # correctly rounded
        np.minimum(steps, TABLE - 1, out=steps)
        f = np.take(self._table, steps.astype(np.intp))
        f /= f.sum(2, keepdims=True)  # sums below 2^23: exact
        return f.transpose(1, 0, 2)

    def _base(self, past: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Context sums shared by every row of a frame, in the embeddings' scale times OLDER: past (m, HISTORY,
        n) the codes of frames t-1 .. t-HISTORY, -1 where there is none -> (m, dim)."""
        w = self.w
        there = past[:, :, 0] >= 0                                  # (m, HISTORY)
        emb = lambda table, k: table[idx * SIZE + np.maximum(past[:, k], 0)].astype(np.int64).sum(1)  # noqa: E731
        base = np.where(there[:, :1], emb(w.prev, 0), w.start.astype(np.int64)) + w.stream[stream_key(idx, w.rows)]
        base = base * OLDER
        for k in range(1, HISTORY):
            if there[:, k].any():
                base += np.where(there[:, k:k + 1], emb(w.hist, k) << (HISTORY - 1 - k), 0)
        return base

    def probabilities(self, codes: np.ndarray, history: np.ndarray | None = None) -> np.ndarray:
        """All the probabilities codes (n_q, frames) are coded with: (frames, n_q, SIZE); ``history``: the
        codes (n_q, k) of the frames before the first (None: a start). What the decoder computes frame by
        frame, at once."""
        rows = self.rows(len(codes))
        w, idx, span = self.w, np.asarray(rows), _span(rows)
        codes = np.asarray(codes, dtype=np.int64)
        n, frames = codes.shape
        ext = np.full((n, HISTORY + frames), -1, np.int64)
        if history is not None and history.shape[1]:
            k = min(HISTORY, history.shape[1])
            ext[:, HISTORY - k:HISTORY] = history[:, -k:]
        ext[:, HISTORY:] = codes
        past = np.stack([ext[:, HISTORY - k:HISTORY - k + frames].T for k in range(1, HISTORY + 1)], 1)
        base = self._base(past, idx)
        low1 = w.low[idx[0] * SIZE + codes[0]].astype(np.int64)
        low2 = low1 + w.low[idx[1] * SIZE + codes[1]]
        lows = np.stack([np.zeros_like(low1), low1] + [low2] * (n - 2), 1)
        h = self._mlp(base[:, None] + (lows + w.query[idx][None]) * OLDER)
        return self._probabilities(h, span)

    # --- coding ------------------------------------------------------------------------------------------
    def encode(self, codes: np.ndarray) -> bytes:
        """codes (n_q, frames) -> range-coded bytes (whole 32-bit words), frame by frame, row by row, the
        context starting afresh at the first frame."""
        import constriction

        codes = np.asarray(codes)
        enc = constriction.stream.queue.RangeEncoder()
        for s in range(0, codes.shape[1], 64):  # blocks of frames bound the (frames, rows, SIZE) table
            p = self.probabilities(codes[:, s:s + 64], codes[:, max(0, s - HISTORY):s])
            enc.encode(codes[:, s:s + 64].T.reshape(-1).astype(np.int32), self._family, p.reshape(-1, SIZE))
        return enc.get_compressed().astype("<u4").tobytes()

    def decode(self, data: bytes, n_q: int, frames: int) -> np.ndarray:
        """Inverse of ``encode``: (n_q, frames) codes. FormatError if the bytes do not decode."""
        import constriction

        rows = self.rows(n_q)
        w, idx, span = self.w, np.asarray(rows), _span(rows)
        if len(data) % 4:
            raise FormatError("context-coded payload is not a whole number of words")
        dec = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
        n, out = len(idx), np.empty((frames, len(idx)), np.int64)
        fixed = w.stream[stream_key(idx, w.rows)].astype(np.int64)
        start = (w.start + fixed) * OLDER
        last = last_hist = None  # frame t-1's sums of the prev and hist tables (``_base``, incrementally)
        older: list[np.ndarray] = []  # hist-table sums of frames t-2, t-3, ... t-HISTORY
        query = w.query[idx].astype(np.int64) * OLDER
        first, second, rest = slice(span.start, span.start + 1), slice(span.start + 1, span.start + 2), \
            slice(span.start + 2, span.stop)
        try:
            for t in range(frames):
                base = start if last is None else (last + fixed) * OLDER
                for k, hist in enumerate(older):
                    base = base + (hist << (HISTORY - 2 - k))
                base = base[None]
                h = self._mlp(base + query[0])
                out[t, 0] = dec.decode(self._family, self._probabilities(h[None], first)[0])[0]
                low1 = w.low[idx[0] * SIZE + out[t, 0]].astype(np.int64) * OLDER
                h = self._mlp(base + low1 + query[1])
                out[t, 1] = dec.decode(self._family, self._probabilities(h[None], second)[0])[0]
                if n > 2:
                    low2 = low1 + w.low[idx[1] * SIZE + out[t, 1]].astype(np.int64) * OLDER
                    h = self._mlp(base + low2 + query[2:])
                    out[t, 2:] = dec.decode(self._family, self._probabilities(h[None], rest)[0])
                if last_hist is not None:
                    older = [last_hist] + older[:HISTORY - 2]
                at = idx * SIZE + out[t]
                last, last_hist = w.prev[at].astype(np.int64).sum(0), w.hist[at].astype(np.int64).sum(0)
        except Exception:
            raise FormatError("context-coded payload does not decode") from None
        return out.T

    def bits(self, codes: np.ndarray) -> np.ndarray:
        """What coding codes (n_q, frames) from a start costs: bits per code by row (the model's
        cross-entropy)."""
        codes = np.asarray(codes, dtype=np.int64)
        total = np.zeros(len(codes))
        for s in range(0, codes.shape[1], 64):
            p = self.probabilities(codes[:, s:s + 64], codes[:, max(0, s - HISTORY):s])
            total -= np.log2(np.take_along_axis(p, codes[:, s:s + 64].T[..., None], 2)[..., 0]).sum(0)
        return total / codes.shape[1]


def _multipliers(out_mul: np.ndarray) -> np.ndarray:
    """The rows' logit multipliers as the float32 factors ``_probabilities`` applies."""
    return (out_mul / float(1 << SHIFT)).astype(np.float32)


def _weights_id(weights: Weights) -> bytes:
    """The first 8 bytes of the SHA-256 of the integer weights: the id files and packets name a model by."""
    h = hashlib.sha256()
    for k, v in sorted(weights.arrays().items()):
        h.update(k.encode() + np.ascontiguousarray(v).tobytes())
    return h.digest()[:8]


def _span(rows) -> slice:
    """A stream's rows as a slice (they are consecutive: 0..n-1 with the pitch, 1..n without)."""
    rows = [int(r) for r in rows]
    if len(rows) < 2 or rows != list(range(rows[0], rows[0] + len(rows))):
        raise CodecError("the context model codes streams of at least two consecutive rows")
    return slice(rows[0], rows[0] + len(rows))


def quantize_weights(s: dict, calib: dict, blocks: int) -> Weights:
    """Float weights (``train.context.FloatContext.state_dict`` as float64 arrays) and activation ranges ->
    the integer ``Weights``."""
    def mul(x):
        return np.round(np.asarray(x, dtype=np.float64) * (1 << SHIFT)).astype(np.int64)

    tables = np.concatenate([s["prev.weight"].ravel(), s["hist.weight"].ravel(), s["low.weight"].ravel()])
    s_e = np.quantile(np.abs(tables), 0.99999) / 127

    def emb(x, clip=True):
        q = np.round(x / s_e)
        return np.clip(q, -127, 127).astype(np.int8) if clip else q.astype(np.int32)

    s_h = calib["h0"] / 127
    w = dict(prev=emb(s["prev.weight"]), hist=emb(s["hist.weight"]), low=emb(s["low.weight"]), query=emb(s["query.weight"], False),
             stream=emb(s["stream.weight"], False), start=emb(s["start"], False), h0_mul=mul(s_e / OLDER / s_h))
    lists = {k: [] for k in ("up", "up_bias", "up_mul", "down", "down_bias", "down_mul", "res_mul")}
    for i in range(blocks):
        wu, bu = s[f"up.{i}.weight"], s[f"up.{i}.bias"]
        su = np.maximum(np.abs(wu).max(1), 1e-8) / 127          # per output channel
        s_a = calib[f"a{i}"] / 127
        lists["up"].append(np.round(wu / su[:, None]).astype(np.int8))
        lists["up_mul"].append(mul(s_h * su / s_a))
        lists["up_bias"].append(mul(bu / s_a))
        wd, bd = s[f"down.{i}.weight"], s[f"down.{i}.bias"]
        sd = np.maximum(np.abs(wd).max(1), 1e-8) / 127
        s_next = calib[f"h{i + 1}"] / 127
        lists["down"].append(np.round(wd / sd[:, None]).astype(np.int8))
        lists["down_mul"].append(mul(s_a * sd / s_next))
        lists["down_bias"].append(mul(bd / s_next))
        lists["res_mul"].append(mul(s_h / s_next))
        s_h = s_next
    rows = s["query.weight"].shape[0]
    out = s["out.weight"].reshape(rows, SIZE, -1)
    so = np.maximum(np.abs(out).reshape(rows, -1).max(1), 1e-8) / 127
    w["out"] = np.round(out / so[:, None, None]).astype(np.int8).reshape(rows * SIZE, -1)
    w["out_bias"] = np.round(s["bias"] / (so * s_h)[:, None]).astype(np.int64)
    w["out_mul"] = mul(so * s_h * STEPS_PER_NAT)
    w["exp_table"] = np.maximum(np.round(TOP * np.exp(-np.arange(TABLE) / STEPS_PER_NAT)), 1).astype(np.int64)
    return Weights(**w, **lists)
