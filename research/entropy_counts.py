"""Count-based context models for the entropy-context study: smoothed conditional code frequencies.

A chain of ever more specific contexts is smoothed by Dirichlet back-off: at level k,
``p_k(y | c_k) = (n_k(c_k, y) + beta_k * p_{k-1}(y)) / (n_k(c_k) + beta_k)``, level 0 the code's
frequency on the training codes plus one half. Only the probability of the code that occurred is
computed (what its cross-entropy needs), by looking counts up in sorted key arrays."""
from __future__ import annotations

import numpy as np

ALPHABET = 1024
BETAS = (0.5, 2.0, 8.0, 32.0, 128.0, 512.0, 2048.0, 8192.0, 32768.0)


def lookup(train_keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """How often each of ``query`` (int64) occurs in ``train_keys`` (int64)."""
    keys, counts = np.unique(train_keys, return_counts=True)
    i = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
    return np.where(keys[i] == query, counts[i], 0)


def unigram(train_y: np.ndarray, query_y: np.ndarray) -> np.ndarray:
    """p(y) from the training codes' frequencies plus one half, at each of ``query_y``."""
    counts = np.bincount(train_y, minlength=ALPHABET) + 0.5
    return counts[query_y] / counts.sum()


def backoff(train_y, train_ctx: list, query_y, query_ctx: list, betas: list) -> np.ndarray:
    """p(y | contexts) of each query code under the Dirichlet back-off chain. ``*_ctx``: one int64 array per
    level (most general first; a context value absent from training backs off entirely)."""
    p = unigram(train_y, query_y)
    for tc, qc, beta in zip(train_ctx, query_ctx, betas, strict=True):
        n_cy = lookup(tc * ALPHABET + train_y, qc * ALPHABET + query_y)
        n_c = lookup(tc, qc)
        p = (n_cy + beta * p) / (n_c + beta)
    return p


def tune_betas(train_y, train_ctx: list, held: np.ndarray) -> list:
    """Per level, the beta of ``BETAS`` with the least cross-entropy on the ``held`` (bool) frames of the
    training codes, fitting on the others (level by level, greedy)."""
    betas = []
    fit = ~held
    for k in range(len(train_ctx)):
        ctx_fit = [c[fit] for c in train_ctx[:k + 1]]
        ctx_held = [c[held] for c in train_ctx[:k + 1]]
        bits = [-np.log2(backoff(train_y[fit], ctx_fit, train_y[held], ctx_held, betas + [b])).mean() for b in BETAS]
        betas.append(BETAS[int(np.argmin(bits))])
    return betas
