"""The waveform head: its pitch source (the comb of a given pitch, streamed exactly, inside the codec) and its postfilter."""
import numpy as np
import torch

from audiocodec.model import Codec, CodecConfig
from audiocodec.model.heads import HarmonicSource
from audiocodec.model.streaming import StreamingDecoder


def test_source_is_a_comb_at_the_given_pitch():
    source = HarmonicSource(dim=16)
    f0 = torch.full((1, 100), 200.0)                          # 1 s at 200 Hz, teacher-forced
    with torch.no_grad():
        spec, voicing, (f0_pred, _) = source(torch.zeros(1, 50, 16), f0_target=f0)
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
        with source.streaming():
            parts = [source(chunk)[0] for chunk in torch.split(x, [1, 7, 2, 20], dim=1)]
    # float32 sines of up to ~100 harmonics: chunked and whole inputs round differently on some CPUs (5e-4
    # seen on an AVX2 host); a wrong state would be off by the spectrum's own size (~1)
    np.testing.assert_allclose(torch.cat(parts, 1).numpy(), whole.numpy(), atol=2e-3)


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


def test_voicing_bands_start_as_one_voicing_and_stream_like_offline():
    """Per-band voicing offsets start at zero (the codec decodes as with one voicing value per frame); once
    trained they vary the voicing over frequency, and streaming still matches the offline decoder."""
    torch.manual_seed(0)
    one = Codec(CodecConfig(pitch_source=True)).eval()
    torch.nn.init.normal_(one.source.out.weight, 0, 0.3)
    banded = Codec(CodecConfig(pitch_source=True, voicing_bands=16)).eval()
    missing, unexpected = banded.load_state_dict(one.state_dict(), strict=False)
    assert set(missing) == {"source.bands.weight", "source.bands.bias"} and not unexpected
    with torch.no_grad():
        codes = one.encode(0.1 * torch.randn(4800), 6)
        np.testing.assert_allclose(banded.decode(codes).numpy(), one.decode(codes).numpy(), atol=1e-6)
        torch.nn.init.normal_(banded.source.bands.weight, 0, 0.5)
        _, voicing, _ = banded.source(banded.decoder(banded.quantizer.decode(codes)))
        assert voicing.shape == (1, 30, 321) and float(voicing.std(-1).mean()) > 0.01
        offline = banded.decode(codes)[0, 0].numpy()
    dec = StreamingDecoder(banded)
    streamed = np.concatenate([dec.push(codes[0, :, i].numpy()) for i in range(codes.shape[-1])] + [dec.flush()])
    np.testing.assert_allclose(streamed, offline, atol=2e-3 * float(np.abs(offline).max()))


def test_postfilter_deepens_valleys_and_keeps_energy_and_phase():
    from audiocodec.model.heads import sharpen

    torch.manual_seed(0)
    mag = torch.exp(torch.randn(3, 5, 321))
    spec = torch.polar(mag, torch.rand(3, 5, 321) * 6.28)
    assert torch.allclose(sharpen(spec, 1.0), spec, atol=1e-5)
    out = sharpen(spec, 1.15)
    assert torch.allclose(out.abs().square().sum(-1), mag.square().sum(-1), rtol=1e-4)  # each frame's energy
    assert torch.allclose(torch.cos(out.angle() - spec.angle()), torch.ones(3, 5, 321), atol=1e-4)
    ratio = lambda m: m.amax(-1) / m.amin(-1)                                        # noqa: E731
    assert (ratio(out.abs()) > ratio(mag) * 1.5).all()


def test_postfilter_runs_in_decoding_not_in_training(engine, speech):
    """A codec configured with a postfilter decodes through it; training sees the plain output it learns from.
    (The shipped codec's postfilter is off: 1.0.)"""
    from dataclasses import replace

    plain = engine.codec
    assert plain.cfg.postfilter == 1.0
    codec = Codec(replace(plain.cfg, postfilter=1.1))._trained(plain.state_dict())
    codes = codec.encode(torch.from_numpy(speech[:16000]), 6)
    filtered, unfiltered = codec.decode(codes), plain.decode(codes)
    assert not torch.allclose(filtered, unfiltered, atol=1e-3)
    assert abs(filtered.square().sum() / unfiltered.square().sum() - 1) < 0.1       # about the same loudness
    codec.train()
    try:
        with torch.no_grad():
            assert torch.equal(codec.synthesize(codec.features(codec.quantizer.decode(codes[:, 1:])))[0],
                               plain.synthesize(plain.features(plain.quantizer.decode(codes[:, 1:])))[0])
    finally:
        codec.eval()
