"""The audio loader: any rate/depth/channels in, mono 16 kHz out; clear errors for bad input."""
import os

import numpy as np
import pytest
import soundfile as sf

from audiocodec import audio
from audiocodec.errors import CodecError


def test_resamples_and_mixes_to_mono(tmp_path):
    t = np.arange(44100) / 44100
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([tone, tone], 1)
    for subtype, ext in [("PCM_24", "wav"), ("FLOAT", "wav"), ("PCM_16", "flac"), ("VORBIS", "ogg")]:
        p = str(tmp_path / f"x_{subtype}.{ext}")
        sf.write(p, stereo, 44100, subtype=subtype)
        x = audio.load(p)
        assert x.dtype == np.float32 and abs(len(x) - 16000) <= 16
        assert 0.3 < np.abs(x[1000:-1000]).max() < 0.6


def test_iter_blocks_matches_load(tmp_path):
    p = str(tmp_path / "long.wav")
    sf.write(p, np.random.default_rng(0).uniform(-0.5, 0.5, 48000 * 3), 48000)
    whole = audio.load(p)
    joined = np.concatenate(list(audio.iter_blocks(p, block_seconds=0.7)))
    assert abs(len(joined) - len(whole)) <= 2
    n = min(len(whole), len(joined))
    assert np.abs(joined[100:n - 100] - whole[100:n - 100]).max() < 1e-3


@pytest.mark.parametrize("make, message", [
    (lambda d: str(d / "missing.wav"), "no such file"),
    (lambda d: str(d), "is a directory"),
    (lambda d: _write(d / "empty.wav", b""), "empty file"),
    (lambda d: _write(d / "text.wav", b"hello, this is not audio at all" * 10), "not a readable audio file"),
    (lambda d: _nan_wav(d / "nan.wav"), "NaN"),
    (lambda d: _zero_len_wav(d / "zero.wav"), "no audio"),
])
def test_bad_input_gives_one_line_error(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(CodecError) as e:
        audio.load(path)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_atomic_save_leaves_no_partial_file(tmp_path):
    with pytest.raises(CodecError):
        audio.save(str(tmp_path / "nofolder" / "x.wav"), np.zeros(10))
    audio.save(str(tmp_path / "ok.wav"), np.zeros(160, dtype=np.float32))
    assert os.listdir(tmp_path) == ["ok.wav"]


def _write(p, data):
    p.write_bytes(data)
    return str(p)


def _nan_wav(p):
    x = np.zeros(1600, dtype=np.float32)
    x[100] = np.nan
    sf.write(str(p), x, 16000, subtype="FLOAT")
    return str(p)


def _zero_len_wav(p):
    sf.write(str(p), np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")
    return str(p)
