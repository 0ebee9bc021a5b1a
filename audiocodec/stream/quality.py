"""The quality of a stream's decoded audio against its input, as ``simulate`` prints it and the network
benchmarks (scripts/bench_loss.py, bench_jitter.py) plot it."""
from __future__ import annotations

import numpy as np


def quality(reference: np.ndarray, decoded: np.ndarray) -> dict:
    """PESQ-WB and STOI of ``decoded`` against ``reference`` (evaluation/metrics.py); PESQ None without speech."""
    from ..evaluation.metrics import pesq_wb, stoi

    p = pesq_wb(reference, decoded)
    return {"pesq_wb": None if np.isnan(p) else p, "stoi": stoi(reference, decoded)}
