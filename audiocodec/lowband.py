"""Compatibility for evaluation/codecs.py until it reads ``stream.modes`` (its owner switches at merge; then
delete this module). The low band lives in ``stream/lowband.py``."""
from .stream.modes import modes

HYBRID_MODES = {m.kbps: (m.neural_kbps, m.low_hz, m.low_snr_db) for m in modes(hybrid=True)}
