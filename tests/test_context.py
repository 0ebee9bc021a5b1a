"""The context model of the entropy coder (bitstream/context.py): exact round trips, the same bits on every
thread count and on both paths (a chunk at once, or frame by frame as a receiver decodes), hostile bytes,
and the shipped model's fit to the shipped weights."""
from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest

from audiocodec.bitstream import container
from audiocodec.bitstream.context import HISTORY, SIZE, ContextModel
from .context_fixture import tiny_context
from audiocodec.bitstream.container import FormatError

ROWS = 25


def tiny_model(seed: int = 0, dim: int = 16, hidden: int = 32) -> ContextModel:
    """A random context model of the shipped layout (25 rows): every model must round-trip, trained or not."""
    return tiny_context(seed, np.zeros((ROWS, SIZE)), "test", dim=dim, hidden=hidden)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def _codes(rng, n_q, frames, repeat=0.7):
    """Codes with a speech-like habit: each frame repeats the last one's code with probability ``repeat``."""
    c = rng.integers(0, SIZE, (n_q, frames))
    for t in range(1, frames):
        keep = rng.random(n_q) < repeat
        c[keep, t] = c[keep, t - 1]
    return c


@pytest.mark.parametrize("n_q", [2, 3, 6, 12, 24])
def test_round_trip_every_stream(model, rng, n_q):
    for frames in (1, 2, 63, 64, 65, 130):
        codes = _codes(rng, n_q, frames)
        data = model.encode(codes)
        assert len(data) % 4 == 0
        assert np.array_equal(model.decode(data, n_q, frames), codes)


def test_rows_follow_the_pitch(model):
    assert model.rows(3) == [1, 2, 3] and model.rows(6) == list(range(6))  # pitch_from 6: 3 rows carry no pitch
    with pytest.raises(Exception, match="streams of 2..24 rows"):
        model.rows(1)


def test_the_chunk_path_equals_the_frame_by_frame_path(model, rng):
    """compress codes a chunk at once; a receiver (and decompress) decodes frame by frame from a start: the
    probabilities must be the same bits, frame for frame."""
    codes = _codes(rng, 12, 40)
    whole = model.probabilities(codes)
    for t in range(40):
        one = model.probabilities(codes[:, t:t + 1], codes[:, max(0, t - HISTORY):t])
        assert np.array_equal(one[0], whole[t])
        assert np.array_equal(model.probabilities(codes[:, t:t + 1], codes[:, :t])[0], whole[t])
    assert np.all(whole > 0)


def test_it_learns_nothing_it_should_not_need(model, rng):
    """A packet's or chunk's codes decode alone: the context starts afresh, whatever came before."""
    a, b = _codes(rng, 6, 20), _codes(rng, 6, 20)
    assert np.array_equal(model.decode(model.encode(b), 6, 20), b)
    assert model.encode(np.concatenate([a, b], 1)) != model.encode(a) + model.encode(b)


def test_hostile_bytes_raise_format_error_only(model, rng):
    codes = _codes(rng, 6, 30)
    data = bytearray(model.encode(codes))
    for trial in range(200):
        bad = bytearray(data)
        kind = trial % 3
        if kind == 0:
            bad[rng.integers(len(bad))] ^= 1 << int(rng.integers(8))
        elif kind == 1:
            bad = bad[:int(rng.integers(0, len(bad)))]
            bad += bytes(-len(bad) % 4)
        else:
            bad = bytearray(rng.bytes(int(rng.integers(0, 64)) * 4))
        try:
            out = model.decode(bytes(bad), 6, 30)
        except FormatError:
            continue
        assert out.shape == (6, 30) and out.min() >= 0 and out.max() < SIZE
    with pytest.raises(FormatError, match="whole number of words"):
        model.decode(b"abc", 6, 30)


_SCRIPT = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
from context_fixture import tiny_context
m = tiny_context(dim=64, hidden=256)
codes = np.random.default_rng(5).integers(0, 1024, (24, 300))
sys.stdout.write(m.encode(codes).hex())
"""


def test_same_bytes_on_every_thread_count():
    """The frequencies are integer arithmetic (float32 products of small integers are exact), so the bytes do
    not depend on how many threads BLAS splits the products over."""
    out = []
    for threads in ("1", "4"):
        env = dict(os.environ, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        out.append(subprocess.run([sys.executable, "-c", _SCRIPT.format(tests=os.path.dirname(__file__))],
                                  env=env, capture_output=True, text=True, check=True).stdout)
    assert out[0] and out[0] == out[1]


def test_save_load_keeps_the_id(model, tmp_path):
    path = str(tmp_path / "m.context.npz")
    model.save(path)
    again = ContextModel.load(path)
    assert again.id == model.id and again.model_id == "test" and again.pitch_from == 6
    with open(path, "wb") as f:
        f.write(b"not a model")
    with pytest.raises(Exception, match="cannot read context model"):
        ContextModel.load(path)


def test_files_name_their_context_model():
    """Version 4 headers name the context model of their context-coded chunks; a flag without a name is
    refused."""
    model = tiny_model()
    h = container.Header(16000, 1, 6, 10, 320, 50 * 320, b"\1" * 8, 500, container.FLAG_CONTEXT,
                         context_id=model.id)
    data = container.encode_file(h, [(50, bytes(40), False, container.CHUNK_CONTEXT)])
    f = io.BytesIO(data)
    got = container.read_header(f)
    assert got.version == 4 and got.context_id == model.id and got.context_coded and got.size == 58
    (n, payload, marker, _), = container.read_chunks(f, got)
    assert (n, payload, marker) == (50, bytes(40), container.CHUNK_CONTEXT)
    nameless = container.encode_header(container.replace(h, context_id=bytes(8), version=4))
    with pytest.raises(FormatError, match="no context model named"):
        container.read_header(io.BytesIO(nameless))
    fixed_only = container.encode_file(container.replace(h, flags=0), [(50, bytes(375), False, None)])
    with pytest.raises(FormatError, match="bad chunk marker"):  # a context chunk in a file that has none
        f = io.BytesIO(fixed_only.replace(b"CF", b"CC"))
        list(container.read_chunks(f, container.read_header(f)))


def test_the_shipped_context_model_fits_the_shipped_weights(engine, speech):
    """The shipped context model is fitted for the shipped weights; compress codes every neural mode with it,
    smaller than fixed-rate, to the same audio; a file names it, and another context model refuses it."""
    from audiocodec.compress import compress, decompress, encode_blocks
    from audiocodec.info import read_info
    from audiocodec.stream.engine import Engine
    from audiocodec.stream.modes import Mode, mode

    assert engine.context is not None and engine.context.model_id == engine.codec.model_id
    for kbps in (1.5, 3.0, 6.0, 12.0):  # (fixed-rate, the same rows: 1.5 kbps would send one fewer)
        coded = compress(speech, kbps, engine)
        fixed = encode_blocks([speech], Mode(kbps, mode(kbps).rows), engine, entropy=False)
        info = read_info(io.BytesIO(coded))
        assert info["context_coded_chunks"] == info["chunks"] and info["entropy_model"].endswith(engine.context.id.hex())
        assert len(coded) < 0.95 * len(fixed), kbps
        assert np.array_equal(decompress(coded, engine), decompress(fixed, engine))
    other = Engine(engine.codec, engine.entropy, tiny_model())
    with pytest.raises(FormatError, match=f"coded with context model {engine.context.id.hex()}, this install has"):
        decompress(coded, other)
    with pytest.raises(FormatError, match="none is installed"):
        decompress(coded, Engine(engine.codec, engine.entropy, None))


def test_fitting_checks_the_round_trip(engine, rng):
    """``fit_for`` (what scripts/fit_context.py and export.py run) trains, quantises and round-trips every
    neural mode's codes before anything is shipped; a few seconds on random codes keep it from rotting."""
    from audiocodec.train.context import fit_for

    codes = rng.integers(0, 1024, (engine.codec.max_rows, 25 * 40)).astype(np.int16)
    offsets = np.arange(0, 26 * 40, 40)
    ctx, bits = fit_for(engine.codec, codes, offsets, minutes=0.02, log=lambda *_: None)
    assert ctx.model_id == engine.codec.model_id and ctx.pitch_from == engine.codec.cfg.pitch_from
    assert sorted(bits) == [4, 6, 12, 24] and all(len(b) == n for n, b in bits.items())


def test_a_tempered_model_is_a_model_of_its_own(model, rng):
    """``tempered`` flattens rows' frequencies (the searched codes' model): it round-trips like any model, is
    named by an id of its own, and refuses multipliers that are not positive integers of the model's shape."""
    flat = model.tempered(np.maximum(model.w.out_mul // 2, 1))
    assert flat.id != model.id and flat.model_id == model.model_id
    built = ContextModel(flat.w, model.model_id, model.pitch_from)  # the same model, built from its weights
    assert built.id == flat.id and model.id == ContextModel(model.w, "test", 6).id
    codes = _codes(rng, 12, 40)
    assert np.array_equal(flat.decode(flat.encode(codes), 12, 40), codes)
    p, q = model.probabilities(codes), flat.probabilities(codes)
    assert (q.max(2) < p.max(2)).all()  # flatter everywhere
    assert np.array_equal(q, built.probabilities(codes))
    for bad in (model.w.out_mul[:-1], model.w.out_mul * 0, model.w.out_mul.astype(float), model.w.out_mul * 100):
        with pytest.raises(Exception, match="bad row multipliers"):
            model.tempered(bad)


def test_fitting_the_searched_model_never_costs_bits(model, rng, tmp_path):
    """``fit_searched`` picks each row's factor on the even clips and measures it on the odd ones: on codes
    as unpredictable as uniform ones the flatter model is cheaper. What it writes, ``searched_model`` reads
    back for that base model only."""
    from audiocodec.stream.engine import save_searched, searched_model
    from audiocodec.train.context import fit_searched

    sets = {"3": (rng.integers(0, SIZE, (6, 80)), np.array([0, 20, 40, 60, 80])),
            "6": (_codes(rng, 12, 60, repeat=0.2), np.array([0, 30, 60]))}
    tempered, bits = fit_searched(model, sets, chunk=25, grid=np.array([0.5, 1.0]), log=lambda *_: None)
    assert set(bits) == {"3", "6"}
    assert bits["3"][1] < bits["3"][0]  # uniform codes: the flatter model codes them cheaper
    path = str(tmp_path / "m.searched.npz")
    save_searched(tempered, model, path)
    assert searched_model(model, path).id == tempered.id
    assert searched_model(tiny_model(seed=1), path) is None  # fitted for another context model
    with open(path, "wb") as f:
        f.write(b"not npz")
    with pytest.raises(Exception, match="cannot read the searched codes' context model"):
        searched_model(model, path)


def test_searched_files_are_coded_with_the_searched_model(engine, speech):
    """``compress --search`` codes its chunks with ``Engine.searched`` where one is installed; the file names
    it, decodes to what the same codes decode to fixed-rate, and an install without it refuses the file by
    name. Plain files keep the context model."""
    from audiocodec.compress import compress, decompress, encode_blocks
    from audiocodec.info import read_info
    from audiocodec.stream.engine import Engine
    from audiocodec.stream.modes import mode

    clip = speech[:16000 * 2]
    flat = engine.context.tempered(np.maximum(engine.context.w.out_mul * 3 // 4, 1))
    both = Engine(engine.codec, engine.entropy, engine.context, flat)
    searched = compress(clip, 6, both, search=2)
    assert read_info(io.BytesIO(searched))["entropy_model"].endswith(flat.id.hex())
    fixed = encode_blocks([clip], mode(6.0), both, entropy=False, search=2)
    assert np.array_equal(decompress(searched, both), decompress(fixed, both))
    with pytest.raises(FormatError, match=f"coded with context model {flat.id.hex()}"):
        decompress(searched, Engine(engine.codec, engine.entropy, engine.context))
    plain = compress(clip, 6, both)
    assert read_info(io.BytesIO(plain))["entropy_model"].endswith(engine.context.id.hex())


def test_the_shipped_searched_model_codes_searched_files_smaller(engine, speech):
    """The shipped model for searched codes is fitted for the shipped context model: the same searched codes
    take fewer bytes with it than with the context model the encoder's codes were fitted on."""
    from audiocodec.compress import compress
    from audiocodec.stream.engine import Engine

    assert engine.searched is not None and engine.searched.id != engine.context.id
    clip = speech[:16000 * 3]
    with_it = compress(clip, 12, engine, search=30)
    without = compress(clip, 12, Engine(engine.codec, engine.entropy, engine.context), search=30)
    assert len(with_it) < 0.97 * len(without)


def _fixed_codes(n_q: int, frames: int) -> np.ndarray:
    """Codes made by arithmetic alone (no random generator, whose streams may change between numpy versions):
    every row holds each code for a few frames, the pitch row (when there is one) stays below 200."""
    r, t = np.arange(n_q)[:, None], np.arange(frames)[None]
    codes = (r * 7919 + (t // (1 + r % 3)) ** 2 * 104729) % SIZE
    codes[0] %= 200
    return codes


# sha256 of the bytes each shipped context model (by id) makes of _fixed_codes(n_q, 150), first 16 hex digits
_PINNED = {"5b09e6e9a05ff27d": {4: "b16324d1cb8b2aa6", 12: "eac4c7ae8af12f1c", 24: "1dac737cfb409451"},
           "65c4d138863c6978": {4: "2e6a193971a3a142", 12: "25066c73c8ec9b01", 24: "575996e8148c350f"}}


@pytest.mark.parametrize("which", ["context", "searched"])
def test_the_shipped_context_models_make_the_same_bytes_as_ever(engine, which):
    """Files and packets already written must keep decoding: the shipped models' bytes are pinned, so a
    change to the arithmetic that moves one frequency fails here (the round trip alone would not see it).
    A new model (a refit gives it a new id) is pinned by adding its line."""
    import hashlib

    model = getattr(engine, which)
    made = {}
    for n_q in (4, 12, 24):
        codes = _fixed_codes(n_q, 150)
        data = model.encode(codes)
        assert np.array_equal(model.decode(data, n_q, 150), codes)
        made[n_q] = hashlib.sha256(data).hexdigest()[:16]
    assert _PINNED.get(model.id.hex()) == made, f"pin {model.id.hex()}'s bytes: {made}"
