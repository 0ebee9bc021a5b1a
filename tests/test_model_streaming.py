"""Streaming state inside the layers (audiocodec/model/layers.py ``StreamingModule``): each stateful layer run
chunk by chunk inside ``with layer.streaming():`` equals one offline call, and streams on a shared model
(``stream_copy``) leave it as it was, also through an exception, and do not disturb each other."""
import threading

import numpy as np
import pytest
import torch

from audiocodec.model import Codec, CodecConfig, load_default
from audiocodec.model.decoder import Decoder
from audiocodec.model.encoder import Encoder
from audiocodec.model.layers import CausalConv1d, ConvNeXtBlock, ResidualUnit, StreamingModule, stream_copy
from audiocodec.model.pitch import PitchTracker
from audiocodec.model.streaming import FRAME, StreamingDecoder, StreamingEncoder

N_Q = 12


def _chunked(layer: StreamingModule, x: torch.Tensor, step: int, seed: int, dim: int = -1, out_dim: int = -1):
    """``layer`` run inside ``streaming()`` on ``x`` cut along ``dim`` into random chunks of 1-5 ``step``s,
    the outputs joined along ``out_dim``."""
    rng, parts, i = np.random.default_rng(seed), [], 0
    with torch.no_grad(), layer.streaming():
        while i < x.shape[dim]:
            n = step * int(rng.integers(1, 6))
            parts.append(layer(x.narrow(dim, i, min(n, x.shape[dim] - i))))
            i += n
    return torch.cat(parts, out_dim)


def _offline(layer: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return layer(x)


@pytest.mark.parametrize("kernel, stride, dilation, groups", [(7, 1, 1, 1), (3, 1, 9, 1), (8, 4, 1, 1),
                                                              (16, 8, 1, 1), (7, 1, 1, 4)])
def test_causal_conv_streams_like_offline(kernel, stride, dilation, groups):
    torch.manual_seed(0)
    conv = CausalConv1d(4, 8, kernel, stride=stride, dilation=dilation, groups=groups)
    x = torch.randn(2, 4, 40 * stride)
    for seed in range(3):
        torch.testing.assert_close(_chunked(conv, x, stride, seed), _offline(conv, x), atol=1e-6, rtol=1e-5)
    assert conv.stream is None  # the context is left


@pytest.mark.parametrize("layer", [ResidualUnit(8, dilation=3), ConvNeXtBlock(8, 16)], ids=["residual", "convnext"])
def test_blocks_stream_like_offline(layer):
    torch.manual_seed(0)
    x = torch.randn(1, 8, 60)
    torch.testing.assert_close(_chunked(layer, x, 1, 0), _offline(layer, x), atol=1e-6, rtol=1e-5)


def test_encoder_streams_like_offline():
    torch.manual_seed(0)
    enc = Encoder((4, 8, 8, 16, 16), blocks=1, hidden=32, latent_dim=8, spectral=True).eval()
    torch.nn.init.normal_(enc.spectral.fc2.weight, std=0.05)  # it starts at zero: make it count
    x = 0.1 * torch.randn(1, 1, 30 * FRAME)
    for seed in range(2):
        torch.testing.assert_close(_chunked(enc, x, FRAME, seed), _offline(enc, x), atol=1e-5, rtol=1e-4)


def test_decoder_streams_like_offline():
    torch.manual_seed(0)
    dec = Decoder(latent_dim=8, dim=16, hidden=32, blocks=3)
    z = torch.randn(1, 8, 40)
    torch.testing.assert_close(_chunked(dec, z, 1, 0, out_dim=1), _offline(dec, z), atol=1e-5, rtol=1e-4)


def test_pitch_tracker_streams_like_offline():
    torch.manual_seed(0)
    tracker = PitchTracker(dim=32, hidden=32).eval()
    x = 0.1 * torch.randn(1, 1, 60 * PitchTracker.HOP)
    got = _chunked(tracker, x, PitchTracker.HOP, 0, out_dim=1)
    torch.testing.assert_close(got, _offline(tracker, x), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("bands", [1, 8])
def test_head_and_source_stream_like_offline(bands):
    """The harmonic source and the iSTFT head (``Codec.synthesize``, its overlap-add tail released by
    ``flush``), with and without a sent pitch."""
    torch.manual_seed(0)
    codec = Codec(CodecConfig(dec_dim=16, pitch_source=True, voicing_bands=bands)).eval()
    torch.nn.init.normal_(codec.source.out.weight, 0, 0.3)
    feats = torch.randn(1, 25, 16)
    for f0 in (None, 100 + 50 * torch.rand(1, 50)):
        with torch.no_grad():
            ref = codec.synthesize(feats, f0)[0][0, 0]
            parts, rng, i = [], np.random.default_rng(1), 0
            with codec.streaming():
                while i < feats.shape[1]:
                    n = int(rng.integers(1, 6))
                    parts.append(codec.synthesize(feats[:, i:i + n], None if f0 is None else f0[:, 2 * i:2 * (i + n)])[0][0, 0])
                    i += n
                parts.append(codec.head.flush()[0])
        got = torch.cat(parts)
        assert got.shape == ref.shape
        # float32 sines of many harmonics: chunked and whole round differently (test_heads.py)
        torch.testing.assert_close(got, ref, atol=2e-3 * float(ref.abs().max()), rtol=0)


@pytest.fixture(scope="module")
def codec():
    return load_default()


@pytest.fixture(scope="module")
def clips(speech):
    return speech[:16000], speech[16000:32000]


def _encode_alone(codec, x, step=FRAME):
    enc = StreamingEncoder(codec, N_Q)
    return np.concatenate([enc.push(x[i:i + step]) for i in range(0, len(x), step)] + [enc.flush()], 1)


def _decode_alone(codec, codes, postfilter=None):
    dec = StreamingDecoder(codec, postfilter)
    return np.concatenate([dec.push(codes[:, k]) for k in range(codes.shape[1])] + [dec.flush()])


def _streaming_layers(codec):
    return [m for m in codec.modules() if isinstance(m, StreamingModule)]


def test_stream_copy_shares_the_weights_and_nothing_that_streams(codec):
    copy = stream_copy(codec)
    assert all(a is b for a, b in zip(copy.parameters(), codec.parameters()))
    assert all(a is b for a, b in zip(copy.buffers(), codec.buffers()))
    assert not {id(m) for m in _streaming_layers(copy)} & {id(m) for m in codec.modules()}
    assert copy.quantizer is codec.quantizer  # holds no stream state: shared as it is
    assert all(m.stream == {} for m in _streaming_layers(copy))
    assert all(m.stream is None for m in _streaming_layers(codec))


def test_streams_leave_the_shared_model_as_it_was(codec, clips):
    x = clips[0]
    weights = {k: v.clone() for k, v in codec.state_dict().items()}
    codes = codec.encode(torch.from_numpy(x), N_Q)
    wav = codec.decode(codes)
    enc, dec = StreamingEncoder(codec, N_Q), StreamingDecoder(codec)
    enc.push(x[:7000])
    dec.push(codes[0, :, :10].numpy())
    # offline calls in the middle of both streams
    assert torch.equal(codec.encode(torch.from_numpy(x), N_Q), codes) and torch.equal(codec.decode(codes), wav)
    with pytest.raises(RuntimeError):  # a latent of the wrong size fails inside the decoder's layers
        dec.push_latent(torch.zeros(5))
    assert all(m.stream is None for m in _streaming_layers(codec))
    assert all(torch.equal(v, weights[k]) for k, v in codec.state_dict().items())
    assert torch.equal(codec.encode(torch.from_numpy(x), N_Q), codes) and torch.equal(codec.decode(codes), wav)


def test_an_exception_inside_streaming_leaves_the_layers_offline(codec, clips):
    codes = codec.encode(torch.from_numpy(clips[0]), N_Q)
    wav = codec.decode(codes)
    with pytest.raises(ValueError), torch.no_grad(), codec.decoder.streaming():
        codec.features(codec.quantizer.decode(codes[:, 1:, :3]), None)
        with pytest.raises(RuntimeError, match="already streaming"):
            codec.decoder.start_streaming()
        raise ValueError("the stream's caller fails")
    assert all(m.stream is None for m in _streaming_layers(codec))
    assert torch.equal(codec.decode(codes), wav)


def test_interleaved_streams_equal_streams_alone(codec, clips):
    """Two decoders on one model, pushed in turn, and a sender's encoder beside a receiver's decoder in two
    threads (``simulate``), give what each gives alone, bit for bit."""
    a, b = (_encode_alone(codec, x) for x in clips)
    ya, yb = _decode_alone(codec, a), _decode_alone(codec, b)
    da, db = StreamingDecoder(codec), StreamingDecoder(codec)
    both = [(da.push(a[:, k]), db.push(b[:, k])) for k in range(a.shape[1])]
    assert np.array_equal(np.concatenate([p for p, _ in both] + [da.flush()]), ya)
    assert np.array_equal(np.concatenate([q for _, q in both] + [db.flush()]), yb)

    out = {}
    sender = threading.Thread(target=lambda: out.update(codes=_encode_alone(codec, clips[0])))
    receiver = threading.Thread(target=lambda: out.update(wav=_decode_alone(codec, b)))
    sender.start(), receiver.start()
    sender.join(), receiver.join()
    assert np.array_equal(out["codes"], a) and np.array_equal(out["wav"], yb)


def test_postfilter_is_an_argument_of_decoding(codec, clips):
    codes = _encode_alone(codec, clips[0])
    configured = codec.head.postfilter
    plain = codec.decode(torch.from_numpy(codes)[None])[0, 0].numpy()  # off by default
    filtered = codec.decode(torch.from_numpy(codes)[None], postfilter=1.1)[0, 0].numpy()
    assert not np.allclose(plain, filtered, atol=1e-3) and codec.head.postfilter == configured == 1.0
    assert np.abs(_decode_alone(codec, codes) - plain).max() < 1e-4
    assert np.abs(_decode_alone(codec, codes, postfilter=1.1) - filtered).max() < 1e-4
