"""Context-coded codes as packet bytes: the range coder's words (``ContextModel.encode``) in network order,
cut to the fewest bytes that still decode to the same codes.

A range coder ends on whole 32-bit words: half a word more than the codes need, on average, which in a
packet of one frame is a tenth of its payload. So the sender cuts the last bytes off, as many as it can:
the receiver pads what it gets with zero bytes to whole words, and a shorter string is kept only if that
decodes to the same codes (cut, or cut and rounded up by one in its last byte). The cuts are tried against
the probabilities the codes were coded with (one range-decoder pass each, no network), and the shortest is
then decoded once as the receiver will decode it, so the two always agree (else the whole words are sent).
No torch."""
from __future__ import annotations

import numpy as np

from ..bitstream.container import FormatError

MAX_CUT = 8  # bytes a sender tries to cut (the coder's ending spans at most two words)


def encode(context, codes: np.ndarray) -> bytes:
    """codes (n_q, frames) -> the shortest bytes found that ``decode`` turns back into them."""
    whole = np.frombuffer(context.encode(codes), "<u4").astype(">u4").tobytes()
    probs = context.probabilities(codes)  # (frames, n_q, SIZE): the order the codes are coded in
    symbols, data = np.asarray(codes).T.reshape(-1), whole
    for n in range(len(whole) - 1, max(0, len(whole) - 1 - MAX_CUT), -1):
        shorter = _cut(data[:n], probs.reshape(len(symbols), -1), symbols)
        if shorter is None:
            break
        data = shorter
    if data != whole:
        try:
            if not np.array_equal(decode(context, data, *codes.shape), codes):
                data = whole
        except FormatError:
            data = whole
    return data


def decode(context, data: bytes, n_q: int, frames: int) -> np.ndarray:
    """Bytes of ``encode`` -> codes (n_q, frames); FormatError if they do not decode."""
    return context.decode(_words(data).astype("<u4").tobytes(), n_q, frames)


def _words(data: bytes) -> np.ndarray:
    """Bytes, padded with zeros to whole words -> big-endian 32-bit words."""
    return np.frombuffer(bytes(data) + bytes(-len(data) % 4), ">u4")


def _cut(head: bytes, probs: np.ndarray, symbols: np.ndarray) -> bytes | None:
    """``head`` or ``head`` + 1 (as a big-endian number), whichever a range decoder reads as ``symbols`` under
    ``probs`` (symbols, SIZE); None if neither."""
    import constriction

    family = constriction.stream.model.Categorical(perfect=False)
    value = int.from_bytes(head, "big") + 1
    for candidate in (head, value.to_bytes(len(head), "big") if value < 1 << (8 * len(head)) else None):
        if candidate is None:
            continue
        dec = constriction.stream.queue.RangeDecoder(_words(candidate).astype(np.uint32))
        try:
            if np.array_equal(dec.decode(family, probs), symbols):
                return candidate
        except AssertionError:  # constriction's word for bytes that do not decode
            continue
    return None
