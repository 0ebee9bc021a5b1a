"""The one place where the evaluation reaches into the product's codec: its weights, its engine and which
bitrates exist (plain and hybrid). Everything else in ``evaluation/`` asks here, so a change in how the
product names its modes touches this file only."""
from __future__ import annotations

import os

from ..model import default_weights_path
from ..stream.engine import Engine, load_engine
from ..stream.modes import bitrates, mode


def weights_path(weights: str | None = None) -> str:
    """The weights file evaluated: ``weights``, or the shipped model's."""
    return weights or default_weights_path()


def engine(weights: str | None = None) -> Engine:
    """The model (and the entropy model beside it) of ``weights`` (default: the shipped model)."""
    return load_engine(weights)


def check_bitrate(kbps: float, hybrid: bool = False) -> None:
    """CodecError unless ``kbps`` is one of the product's bitrates (its hybrid ones with ``hybrid``)."""
    mode(kbps, hybrid)


def n_q(kbps: float) -> int:
    """Code rows sent at a plain bitrate (CodecError for another)."""
    return mode(kbps).rows


def plain_bitrates() -> list[float]:
    """The neural-only modes' bitrates (kbps), ascending."""
    return sorted(bitrates())


def hybrid_bitrates() -> list[float]:
    """The hybrid modes' bitrates (kbps), ascending."""
    return sorted(bitrates(hybrid=True))


def model_info(weights: str | None = None) -> dict:
    """The model under test: its id, its weights file, whether an entropy model matches it, and what the
    weights' own metadata says of their training (``export_step``: the step counter of the training run at
    the checkpoint exported; a run initialised from earlier weights may count from its own start)."""
    path = weights_path(weights)
    eng = engine(weights)
    meta = eng.codec.metadata(path)
    step = meta.get("steps")
    return {"weights": os.path.relpath(path), "model_id": eng.codec.model_id, "entropy_model": eng.entropy is not None,
            "context_model": eng.context.id.hex() if eng.context is not None else None,
            "searched_context_model": eng.searched.id.hex() if eng.searched is not None else None,
            "export_step": int(step) if step is not None and str(step).isdigit() else None,
            "averaging": meta.get("weights"), "trained_on": meta.get("trained_on")}
