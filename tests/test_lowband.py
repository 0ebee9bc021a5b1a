"""The low band's waveform layer (stream/lowband.py) and the hybrid files built on it."""
import io

import numpy as np
import pytest

from audiocodec.bitstream.container import FormatError
from audiocodec.stream.lowband import HOP, LowBand, LowBandDecoder, LowBandEncoder, frames_for
from audiocodec.stream.modes import EARLIER, bitrates, mode


def _snr(ref: np.ndarray, test: np.ndarray) -> float:
    return 10 * np.log10((ref ** 2).sum() / ((ref - test) ** 2).sum())


def test_mdct_reconstructs_perfectly(rng):
    full = LowBand(8000, 12)  # every coefficient kept: the lapped transform is orthogonal
    for n in (1, 320, 4321):
        x = rng.standard_normal(n)
        assert np.abs(full.imdct(full.mdct(x), n) - x).max() < 1e-9
        assert len(full.mdct(x)) == frames_for(n) == -(-n // HOP) + 1


def test_replace_keeps_the_high_band_and_takes_the_low(rng):
    layer, full = LowBand(1000, 12), LowBand(8000, 12)
    x, y = rng.standard_normal(8000), rng.standard_normal(8000)
    z = layer.replace(y, layer.mdct(x))
    inner = slice(2, -2)  # the first and last frames reach past the signal's ends
    assert _snr(full.mdct(x)[inner, :40], full.mdct(z)[inner, :40]) > 40
    assert _snr(full.mdct(y)[inner, 40:], full.mdct(z)[inner, 40:]) > 40


@pytest.mark.parametrize("snr", [6, 12, 18])
def test_quantization_noise_sits_at_the_chosen_snr(speech, snr):
    layer = LowBand(1000, snr)
    coefs = layer.mdct(speech)
    sent = layer.decode_frames(layer.encode(speech), len(coefs))
    assert snr - 1 < _snr(coefs, sent) < snr + 5  # at coarse steps many coefficients fall to 0: less noise
    assert len(layer.encode(speech)) < len(layer.encode(np.concatenate([speech, speech])))


def test_streaming_equals_offline(rng, speech):
    layer = LowBand(600, 12)
    x, y = speech[:12345].astype(np.float64), rng.standard_normal(12345) * 0.1
    enc, parts, i = LowBandEncoder(layer), [], 0
    while i < len(x):
        k = int(rng.integers(1, 900))
        parts.append(enc.push(x[i:i + k]))
        i += k
    coefs = np.concatenate(parts + [enc.flush()])
    assert np.allclose(coefs, layer.mdct(x))
    dec, out, i, j = LowBandDecoder(layer), [], 0, 0
    while i < len(y):
        k, m = int(rng.integers(1, 900)), int(rng.integers(0, 4))
        out.append(dec.push(y[i:i + k], coefs[j:j + m]))
        i, j = i + k, j + m
    out.append(dec.flush(None, coefs[j:]))
    assert np.allclose(np.concatenate(out)[:len(y)], layer.replace(y, coefs), atol=1e-6)


def test_hostile_payloads_decode_to_bounded_noise_or_fail_cleanly(rng):
    layer = LowBand(1400, 15)
    decoded = 0
    for n in [0, 4, 64, 4000] * 10:
        try:
            c = layer.decode_frames(rng.bytes(n), 50)
        except FormatError:
            continue
        decoded += 1
        assert c.shape == (50, 56) and np.isfinite(c).all() and np.abs(c).max() < 1e4
    assert decoded
    with pytest.raises(FormatError, match="whole number of words"):
        layer.decode_frames(b"abc", 5)


@pytest.mark.parametrize("kbps", bitrates(hybrid=True))
def test_hybrid_file_carries_the_low_band(engine, speech, kbps):
    """A hybrid file decodes to the neural layer's audio with the input's low band at about the chosen SNR,
    equal to the offline path, and costs about its nominal bitrate."""
    from audiocodec.compress import compress, decompress
    from audiocodec.info import read_info

    m = mode(kbps, hybrid=True)
    neural, cutoff, snr = m.neural_kbps, m.low_hz, m.low_snr_db
    data = compress(speech, kbps, engine, hybrid=True)
    info = read_info(io.BytesIO(data))
    assert info["format_version"] == 4 and info["bitrate_kbps"] == kbps and info["neural_kbps"] == neural
    assert info["actual_kbps"] < kbps * 1.15
    y = decompress(data, engine)
    layer = LowBand(cutoff, snr)
    assert len(y) == len(speech)
    assert snr - 1 < _snr(layer.mdct(speech)[1:-1], layer.mdct(y)[1:-1]) < snr + 5
    plain = decompress(compress(speech, neural, engine), engine)
    offline = layer.replace(plain, layer.sent(speech))
    assert np.abs(y - offline).max() < 1e-4


@pytest.mark.parametrize("old", EARLIER)
def test_files_of_earlier_hybrid_settings_still_decode_and_are_named(engine, speech, old, monkeypatch):
    """A file names its low band's cutoff and SNR, so one made with a hybrid mode's earlier setting decodes as
    it was made, and ``info`` still calls it by its nominal bitrate."""
    from audiocodec.compress import compress, decompress
    from audiocodec.info import read_info
    from audiocodec.stream import modes

    assert old not in modes.MODES
    monkeypatch.setattr(modes, "MODES", tuple(old if m.hybrid and m.kbps == old.kbps else m for m in modes.MODES))
    data = compress(speech, old.kbps, engine, hybrid=True)
    monkeypatch.undo()
    info = read_info(io.BytesIO(data))
    assert (info["low_band_hz"], info["low_band_snr_db"], info["bitrate_kbps"]) == (old.low_hz, old.low_snr_db, old.kbps)
    y = decompress(data, engine)
    layer = LowBand(old.low_hz, old.low_snr_db)
    plain = decompress(compress(speech, old.neural_kbps, engine), engine)
    assert np.abs(y - layer.replace(plain, layer.sent(speech))).max() < 1e-4


def test_hybrid_needs_a_hybrid_bitrate(engine, speech):
    from audiocodec.compress import compress
    from audiocodec.errors import CodecError

    with pytest.raises(CodecError, match="hybrid bitrate must be one of 6, 12"):
        compress(speech, 3.0, engine, hybrid=True)


def test_damaged_hybrid_files_are_decoded_or_rejected(engine, speech):
    """Mutated real hybrid files: each decodes or fails with FormatError (CRCs catch nearly all)."""
    from audiocodec.compress import compress, decompress

    good = compress(speech[:8000], 6.0, engine, hybrid=True)
    r = np.random.default_rng(3)
    rejected = 0
    for i in range(200):
        d = bytearray(good)
        if i % 2:
            d[r.integers(len(d))] ^= 1 << r.integers(8)
        else:
            d = d[: r.integers(len(d))]
        try:
            assert len(decompress(bytes(d), engine)) == 8000
        except FormatError:
            rejected += 1
    assert rejected > 190


def test_benchmark_runs_the_hybrid_modes(speech):
    from audiocodec.evaluation.codecs import make_codecs

    codecs = make_codecs((), ("hybrid",))
    assert [c.name for c in codecs] == [f"hybrid-{k:g}" for k in bitrates(hybrid=True)]
    coded = codecs[0].run(speech)
    assert len(coded.decoded) == len(speech) and 0 < coded.payload_bytes < coded.file_bytes
