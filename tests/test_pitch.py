"""The sender's pitch (audiocodec/model/pitch.py): its 8-bit code, the tracker's causality and streaming, and a
codec that sends it as the first row of codes, through the file format and the streaming path."""
import math

import numpy as np
import torch

from audiocodec.bitstream.entropy import EntropyModel
from audiocodec.compress import compress, decompress
from audiocodec.stream.engine import Engine
from audiocodec.model import Codec, CodecConfig
from audiocodec.model.pitch import F0_MAX, F0_MIN, PitchTracker, dequantize, frame_symbols, quantize, to_hz
from audiocodec.model.streaming import FRAME, StreamingDecoder, StreamingEncoder, latency_ms


def test_code_round_trips_and_is_fine_enough():
    symbols = torch.arange(256)
    assert torch.equal(quantize(to_hz(symbols)), symbols)
    assert to_hz(torch.tensor([0])).item() == 0 and quantize(torch.tensor([0.0])).item() == 0
    f0 = torch.exp(torch.empty(1000).uniform_(math.log(F0_MIN), math.log(F0_MAX)))
    err = torch.log2(to_hz(quantize(f0)) / f0).abs()
    assert err.max() < 0.5 * math.log2(F0_MAX / F0_MIN) / 254 + 1e-6  # half a step: 0.6 % of an octave
    assert quantize(torch.tensor([30.0, 900.0])).tolist() == [1, 255]  # out of range: clamped, still voiced


def test_dequantize_fills_the_frame_between_and_streams():
    symbols = torch.tensor([[0, 100, 110, 0, 50]])
    f0 = dequantize(symbols)
    hz = to_hz(symbols)[0]
    assert torch.equal(f0[0, 1::2], hz)                                  # each frame's end: its symbol
    assert torch.isclose(f0[0, 4], torch.sqrt(hz[1] * hz[2]))            # between two voiced: geometric mean
    assert f0[0, 2] == hz[1] and f0[0, 8] == hz[4] and f0[0, 6] == 0     # otherwise its own
    pieces = [dequantize(symbols[:, :2]), dequantize(symbols[:, 2:], symbols[:, 1:2])]
    assert torch.equal(torch.cat(pieces, 1), f0)
    assert torch.equal(frame_symbols(f0), symbols)


def test_tracker_is_causal():
    torch.manual_seed(0)
    tracker = PitchTracker().eval()
    x = torch.randn(1, 1, 16 * 160) * 0.1
    y = x.clone()
    y[..., 10 * 160:] = torch.randn(6 * 160)
    with torch.no_grad():
        a, b = tracker(x), tracker(y)
    assert torch.allclose(a[:, :10], b[:, :10], atol=1e-5) and not torch.allclose(a[:, 10:], b[:, 10:])


def test_tracker_targets_peak_at_the_pitch():
    tracker = PitchTracker()
    t = tracker.targets(torch.tensor([0.0, 100.0, 400.0]))
    assert torch.allclose(t.sum(-1), torch.ones(3)) and t[0, 0] == 1
    for row, hz in zip(t[1:], (100.0, 400.0)):
        assert abs(tracker.to_hz(torch.log(row + 1e-9))[..., None].item() - hz) / hz < 0.01


def _pitch_codec() -> Codec:
    torch.manual_seed(0)
    cfg = CodecConfig(enc_channels=(8, 8, 16, 16, 32), enc_hidden=64, latent_dim=16, n_codebooks=6, codebook_size=256,
                      dec_dim=32, dec_hidden=64, dec_blocks=1, pitch_source=True, pitch_coded=True, pitch_from=3)
    codec = Codec(cfg).eval()
    codec.quantizer.mark_trained()
    with torch.no_grad():  # a tracker that calls every frame voiced, at varying pitch
        codec.pitch.out.bias[0] = -5.0
    return codec


def _voice(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sign(np.sin(2 * np.pi * (120 + 40 * t) * t))).astype(np.float32)


def test_codec_sends_the_pitch_from_pitch_from_rows_up():
    codec, x = _pitch_codec(), torch.from_numpy(_voice())
    assert codec.max_rows == 7 and codec.row_tables(2) == [0, 1] and codec.row_tables(4) == [6, 0, 1, 2]
    plain, sent = codec.encode(x, 2), codec.encode(x, 4)
    assert sent.shape == (1, 4, 50) and int(sent[0, 0].max()) < 256 and int(sent[0, 0].min()) > 0
    assert torch.equal(sent[:, 1:3], codec.encode(x, 3)[:, 1:])  # the stages after the pitch row
    z, late = codec.encoder.parts(x[None, None])
    assert torch.equal(plain, codec.quantizer.encode(z, 2, late))
    changed = sent.clone()
    changed[:, 0] = 200  # the decoder follows the pitch it is sent
    assert not torch.allclose(codec.decode(sent), codec.decode(changed))


def test_streaming_with_pitch_matches_offline():
    codec, x = _pitch_codec(), _voice(1.3)
    codes = codec.encode(torch.from_numpy(x), 4)[0].numpy()
    enc, parts, i = StreamingEncoder(codec, 4), [], 0
    for n in np.random.default_rng(0).integers(1, 1500, 100):
        parts.append(enc.push(x[i:i + n]))
        i += n
    parts.append(enc.push(x[i:]))
    parts.append(enc.flush())
    assert np.array_equal(np.concatenate(parts, 1)[0], codes[0])  # the pitch row exactly
    late = StreamingEncoder(codec, 4)  # the tracker hears 20 ms past a frame: its codes come one frame later
    assert [late.push(x[i * FRAME:(i + 1) * FRAME]).shape[1] for i in range(3)] == [0, 1, 1]
    assert late.flush().shape[1] == 1 and StreamingEncoder(codec, 2).push(x[:FRAME]).shape[1] == 1
    assert latency_ms(codec, 4) == 70.0 and latency_ms(codec, 2) == 50.0
    dec = StreamingDecoder(codec)
    y = np.concatenate([dec.push(codes[:, k:k + 3]) for k in range(0, codes.shape[1], 3)] + [dec.flush()])
    ref = codec.decode(torch.from_numpy(codes)[None])[0, 0].numpy()
    assert len(y) == codes.shape[1] * FRAME and np.abs(y - ref).max() < 1e-4


def test_files_with_pitch_round_trip_range_coded():
    codec, x = _pitch_codec(), _voice()
    counts = np.ones((codec.max_rows, codec.cfg.codebook_size), dtype=np.int64)
    counts[-1, :256] = 1000  # the pitch table: symbols 0..255
    engine = Engine(codec, EntropyModel(counts, codec.model_id))
    for kbps, rows in ((1.5, 3), (3.0, 6)):  # with pitch_from = 3, both send the pitch
        y = decompress(compress(x, kbps, engine), engine)
        ref = codec.decode(codec.encode(torch.from_numpy(x), rows))[0, 0, :len(x)].numpy()
        assert len(y) == len(x) and np.abs(y - ref).max() < 1e-4
