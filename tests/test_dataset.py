"""The corpus reader used by training: one int16 array per split, clip offsets, and the cached pitch track."""
import numpy as np
import pytest
import soundfile as sf

from audiocodec.train import dataset


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    """A two-clip corpus in the shared layout: a 200 Hz harmonic tone (1 s, 16 kHz, peak 0.5; a pitch tracker
    like Harvest calls a bare sine unvoiced, as no voice is one) and 0.5 s of silence at 8 kHz."""
    root = tmp_path / "speech"
    (root / "train").mkdir(parents=True)
    t = np.arange(16000) / 16000
    tone = sum(np.sin(2 * np.pi * 200 * k * t) / k for k in range(1, 20))
    sf.write(root / "train" / "tone.wav", 0.5 * tone / np.abs(tone).max(), 16000, subtype="PCM_16")
    sf.write(root / "train" / "quiet.wav", np.zeros(4000), 8000, subtype="PCM_16")
    (root / "manifest.csv").write_text("path,split,source\ntrain/tone.wav,train,a\ntrain/quiet.wav,train,b\n")
    monkeypatch.setattr(dataset, "CACHE", str(tmp_path / "cache"))
    return str(root)


def test_load_split_concatenates_clips_at_16k(corpus):
    audio, offsets = dataset.load_split(corpus, "train", progress=False)
    assert audio.dtype == np.int16 and list(offsets) == [0, 16000] and len(audio) == 16000 + 8000
    assert abs(int(np.abs(audio[:16000]).max()) - 16384) < 200 and not audio[16000:].any()
    again, _ = dataset.load_split(corpus, "train", progress=False)  # from the cache
    assert np.array_equal(audio, again)


def test_load_f0_tracks_the_tone(corpus):
    pytest.importorskip("pyworld")
    f0 = dataset.load_f0(corpus, "train", progress=False)
    assert f0.dtype == np.float32 and len(f0) == -(-(16000 + 8000) // dataset.F0_HOP)
    tone = f0[10:90]   # 0.1 .. 0.9 s: inside the tone
    assert np.median(tone) == pytest.approx(200, rel=0.02) and (tone > 0).mean() > 0.9
    assert (f0[110:] == 0).all()  # the silence is unvoiced
    assert np.array_equal(f0, dataset.load_f0(corpus, "train", progress=False))  # from the cache
