"""Bounded, seeded runs of the fuzzers in research/ (which run longer): mutated, re-checksummed and
reordered .acdc files, and hostile datagrams with and without a key. Nothing may raise a traceback, hang,
accept a moved chunk, decode to a blow-up, refuse an honest packet after forgeries, or open a forgery
under a key."""
import importlib.util
import os

import pytest

RESEARCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "research")


def _script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(RESEARCH, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_file_fuzz(engine, speech):
    fuzz = _script("fuzz_files")
    result = fuzz.run(220, seed=3, engine=engine, clip=speech[:8000])
    counts = result["counts"]
    assert result["failures"] == 0, counts
    for kind in fuzz.REORDERINGS + ("flip", "truncate", "chunk head"):
        assert set(counts[kind]) == {"refused"}, (kind, counts[kind])
    assert counts["payload"].get("decoded", 0) > 10  # re-checksummed payloads reach the decoders


@pytest.mark.parametrize("seed", [1, 2])
def test_packet_fuzz(seed):
    result = _script("fuzz_packets").run(3000, seed=seed)
    counts = result["counts"]
    assert result["failures"] == 0, counts
    assert counts["sealed datagrams"] >= 3000 and not any(k.startswith("forgery accepted WITH") for k in counts)
    assert counts["datagrams"] >= 3000
