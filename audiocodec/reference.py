"""decompress --reference: the reference is checked before anything is written, and the result compared with
it (PESQ-WB, STOI), with a warning first where the reference seems to be another clip."""
from __future__ import annotations

import os
import sys

import numpy as np

from . import audio
from .constants import FRAME, SAMPLE_RATE
from .errors import CodecError

ENVELOPE_MATCH = 0.5  # below this correlation of 20 ms envelopes the reference is probably another clip


def check(path: str) -> None:
    """--reference must be a readable audio file, checked before anything is written."""
    audio.check_path(path)
    if not os.access(path, os.R_OK):
        raise CodecError(f"--reference {path}: cannot read it (permission denied)")
    audio.info(path)


def envelope(x: np.ndarray) -> np.ndarray:
    """(samples,) -> level of each 20 ms frame in dB."""
    n = len(x) // FRAME
    return 10 * np.log10(np.mean(x[: n * FRAME].reshape(n, FRAME) ** 2, axis=1) + 1e-10)


def report(reference: str, decoded: np.ndarray) -> None:
    """PESQ-WB and STOI against the reference; a warning first if it looks like another clip."""
    from .stream.quality import quality

    ref = audio.load(reference)
    if abs(len(ref) - len(decoded)) > FRAME:
        print(f"audiocodec: warning: --reference is {len(ref) / SAMPLE_RATE:.2f} s, the decoded audio "
              f"{len(decoded) / SAMPLE_RATE:.2f} s", file=sys.stderr)
    n = min(len(ref), len(decoded))
    a, b = envelope(ref[:n]), envelope(decoded[:n])
    match = float(np.corrcoef(a, b)[0, 1]) if len(a) > 2 and a.std() > 0 and b.std() > 0 else 1.0
    if match < ENVELOPE_MATCH:
        print(f"audiocodec: warning: --reference looks like a different clip (its level follows the decoded "
              f"audio's with correlation {match:.2f})", file=sys.stderr)
    q = quality(ref, decoded)
    p = "n/a (no speech detected)" if q["pesq_wb"] is None else f"{q['pesq_wb']:.2f}"
    print(f"quality vs {reference}: PESQ-WB {p}, STOI {q['stoi']:.3f}", file=sys.stderr)
