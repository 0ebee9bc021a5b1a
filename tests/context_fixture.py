"""Tiny context models for tests: random integer networks (``bitstream.context.quantize_weights`` of a random
float state, the names and shapes of ``train.context.FloatContext``), made in a few milliseconds. Any model
codes and decodes exactly; only the bit counts depend on training, so a bias towards the codes a test uses
stands in for it."""
from __future__ import annotations

import numpy as np

from audiocodec.bitstream.context import SIZE, ContextModel, quantize_weights

ROWS, DIM, HIDDEN, BLOCKS = 25, 8, 16, 2


def tiny_context(seed: int = 0, bias: np.ndarray | None = None, model_id: str = "0000000000000000",
                 pitch_from: int = 6, dim: int = DIM, hidden: int = HIDDEN) -> ContextModel:
    """A random context model of ROWS rows; ``bias`` (ROWS, SIZE): the logits' bias (default: falling with
    the code, so small codes cost fewer than 10 bits)."""
    r = np.random.default_rng(seed)

    def normal(*shape, std=0.3):
        return r.normal(0.0, std, shape)

    s = {"prev.weight": normal(ROWS * SIZE, dim), "hist.weight": normal(ROWS * SIZE, dim, std=0.1),
         "low.weight": normal(ROWS * SIZE, dim),
         "query.weight": normal(ROWS, dim), "stream.weight": normal(2 * (ROWS + 1), dim), "start": normal(dim),
         "out.weight": normal(ROWS * SIZE, dim, std=0.1),
         "bias": -np.arange(SIZE)[None].repeat(ROWS, 0) / 40.0 if bias is None else np.asarray(bias, float)}
    for i in range(BLOCKS):
        s.update({f"up.{i}.weight": normal(hidden, dim), f"up.{i}.bias": normal(hidden, std=0.1),
                  f"down.{i}.weight": normal(dim, hidden), f"down.{i}.bias": normal(dim, std=0.1)})
    calib = {f"h{i}": 3.0 for i in range(BLOCKS + 1)} | {f"a{i}": 2.0 for i in range(BLOCKS)}
    return ContextModel(quantize_weights(s, calib, BLOCKS), model_id, pitch_from)


def small_codes(rng: np.random.Generator, n_q: int, frames: int) -> np.ndarray:
    """(n_q, frames) codes the default ``tiny_context`` codes in fewer bits than fixed-rate."""
    return np.minimum(rng.geometric(1 / 30, (n_q, frames)) - 1, 1023)


def histogram_bias(codes: np.ndarray, rows: list[int]) -> np.ndarray:
    """A ``tiny_context`` bias fitted to codes (len(rows), frames) of the stream rows ``rows``: each row's
    code histogram as log-probabilities (others unlikely), what a trained model does better."""
    bias = np.full((ROWS, SIZE), -12.0)
    for r, row in zip(rows, codes):
        bias[r] = np.log(np.bincount(row, minlength=SIZE) + 0.05)
    return bias
