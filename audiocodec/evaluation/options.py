"""Command-line helpers shared by the evaluation's subcommands and scripts (no CLI-layer imports)."""
from __future__ import annotations

from ..errors import CodecError


def parse_list(text: str, what: str, allowed=None, cast=str) -> list:
    """'a,b,c' -> [cast(a), ...]; CodecError naming the bad item."""
    out = []
    for item in (t.strip() for t in str(text).split(",")):
        if not item:
            continue
        try:
            v = cast(item)
        except ValueError:
            raise CodecError(f"{what}: cannot read {item!r}") from None
        if allowed is not None and v not in allowed:
            raise CodecError(f"{what}: {item!r} is not one of {', '.join(str(a) for a in allowed)}")
        out.append(v)
    return out
