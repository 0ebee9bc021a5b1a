"""The waveform head's pitch source on its own: the comb of a given pitch, streamed exactly, inside the codec."""
import numpy as np
import torch

from audiocodec.model import Codec, CodecConfig
from audiocodec.model.heads import HarmonicSource
from audiocodec.streaming import StreamingDecoder


def test_source_is_a_comb_at_the_given_pitch():
    source = HarmonicSource(dim=16)
    f0 = torch.full((1, 100), 200.0)                          # 1 s at 200 Hz, teacher-forced
    with torch.no_grad():
        spec, voicing, (f0_pred, _), _ = source(torch.zeros(1, 50, 16), f0_target=f0)
        wav, _ = source.excitation(f0, f0[:, :1], torch.zeros(1, 1, dtype=torch.float64))
    assert spec.shape == (1, 100, 321) and voicing.shape == (1, 100) and f0_pred.shape == (1, 100)
    mag = spec[0, 10:].abs().mean(0).numpy()                  # bins are 25 Hz apart: harmonics every 8 bins
    assert np.allclose(mag[8:300:8], 1.0, atol=0.02)          # scaled so that each harmonic peaks at 1
    assert mag[4:300:8].max() < 0.02                          # nothing between harmonics
    peaks = np.fft.rfftfreq(16000, 1 / 16000)[np.argsort(np.abs(np.fft.rfft(wav[0].numpy())))[-38:]]
    assert set(np.round(peaks).astype(int)) == set(range(200, 7601, 200))  # up to 0.95 x Nyquist
    assert float(f0_pred.min()) >= HarmonicSource.F0_MIN and float(f0_pred.max()) <= HarmonicSource.F0_MAX


def test_source_streams_like_offline():
    torch.manual_seed(0)
    source = HarmonicSource(dim=16)
    torch.nn.init.normal_(source.out.weight, 0, 0.3)
    x = torch.randn(1, 30, 16)
    with torch.no_grad():
        whole = source(x)[0]
        parts, state = [], None
        for chunk in torch.split(x, [1, 7, 2, 20], dim=1):
            spec, _, _, state = source(chunk, state=state)
            parts.append(spec)
    np.testing.assert_allclose(torch.cat(parts, 1).numpy(), whole.numpy(), atol=1e-4)


def test_codec_with_pitch_source_streams_like_offline():
    torch.manual_seed(0)
    codec = Codec(CodecConfig(pitch_source=True)).eval()
    torch.nn.init.normal_(codec.source.out.weight, 0, 0.3)
    with torch.no_grad():
        codes = codec.encode(0.1 * torch.randn(4800), 6)
        offline = codec.decode(codes)[0, 0].numpy()
    dec = StreamingDecoder(codec)
    streamed = np.concatenate([dec.push(codes[0, :, i].numpy()) for i in range(codes.shape[-1])] + [dec.flush()])
    np.testing.assert_allclose(streamed, offline, atol=2e-3 * float(np.abs(offline).max()))
