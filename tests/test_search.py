"""Analysis by synthesis (``compress --search``, audiocodec/stream/search.py): the searched codes decode closer to
the input by the training losses than the encoder's own, keep the pitch row, go through the real bitstream and
any decoder, and a stream of several chunks is searched chunk by chunk with the codes before each as its prefix."""
import io

import numpy as np
import pytest
import torch

from audiocodec import compress as compress_module
from audiocodec.bitstream.container import read_chunks, read_header
from audiocodec.compress import compress, decompress
from audiocodec.errors import CodecError
from audiocodec.stream.lowband import layer
from audiocodec.stream.search import CMAG, MEL, AdamStep, low_part, search_codes
from audiocodec.train.losses import CompressedMagnitudeLoss, MultiScaleMelLoss


def _loss(engine, wav, codes) -> float:
    y = engine.codec.decode(torch.from_numpy(codes)[None])[..., :len(wav)]
    x = torch.from_numpy(wav)[None, None]
    return float(MEL * MultiScaleMelLoss()(y, x) + CMAG * CompressedMagnitudeLoss()(y, x))


@pytest.mark.parametrize("rows", [12, 24])
def test_searched_codes_decode_closer_and_keep_the_pitch(engine, speech, rows):
    codec = engine.codec
    wav = speech[:16000].astype(np.float32)
    codes = codec.encode(torch.from_numpy(wav), rows)[0].numpy()
    found = search_codes(codec, wav, codes, codes[:, :0], steps=6)
    assert found.shape == codes.shape and found.dtype == codes.dtype
    assert found.min() >= 0 and found.max() < codec.cfg.codebook_size
    if codec.sends_pitch(rows):
        assert np.array_equal(found[0], codes[0])
    assert _loss(engine, wav, found) < _loss(engine, wav, codes) - 0.01
    assert np.array_equal(search_codes(codec, wav, codes, codes[:, :0], steps=0), codes)


def test_compress_search_is_a_valid_file_and_deterministic(engine, speech):
    wav = speech[:16000].astype(np.float32)
    plain, searched = compress(wav, 6, engine), compress(wav, 6, engine, search=4)
    assert searched == compress(wav, 6, engine, search=4) and searched != plain
    assert read_header(io.BytesIO(searched)).n_q == read_header(io.BytesIO(plain)).n_q
    assert len(decompress(searched, engine)) == len(wav)


def test_a_stream_of_chunks_is_searched_chunk_by_chunk(engine, speech, monkeypatch):
    monkeypatch.setattr(compress_module, "FRAMES_PER_CHUNK", 20)
    calls = []
    real = compress_module.CodeSearch.refine

    def spy(self, frames):
        calls.append((0 if self.prefix is None else self.prefix.shape[1], len(frames), len(self.audio)))
        return real(self, frames)

    monkeypatch.setattr(compress_module.CodeSearch, "refine", spy)
    wav = speech[:16000 + 4000].astype(np.float32)  # 62.5 frames: 20, 20, 20 and the last 3
    data = compress(wav, 6, engine, search=2)
    header = read_header(io.BytesIO(data))
    assert [n for n, *_ in read_chunks(_body(data), header)] == [20, 20, 20, 3]
    assert [(p, n) for p, n, _ in calls] == [(0, 20), (20, 20), (40, 20), (60, 3)]
    assert all(heard >= (p + n - 1) * 320 for p, n, heard in calls)
    assert len(decompress(data, engine)) == len(wav)


def _body(data: bytes) -> io.BytesIO:
    f = io.BytesIO(data)
    read_header(f)
    return f


def test_the_search_refuses_the_mode_it_did_not_help(engine, speech):
    with pytest.raises(CodecError, match="--search works at 3, 6 and 12 kbps and in the hybrid modes, not at 1.5 kbps"):
        compress(speech[:8000], 1.5, engine, search=5)


def test_the_band_a_hybrid_receiver_replaces_is_the_low_bands_own_transform():
    low = layer(1400, 15.0)
    y = np.random.default_rng(0).standard_normal(16000 + 123)
    mine = low_part(low, torch.from_numpy(y.astype(np.float32))[None, None])[0, 0].numpy()
    assert np.allclose(mine, low.imdct(low.mdct(y), len(y)), atol=1e-5)


@pytest.mark.parametrize("kbps", [6, 12])
def test_a_hybrid_stream_is_searched_for_what_its_receiver_plays(engine, speech, kbps):
    """The low band is put in place of the decoder's below the cutoff, and the searched neural layer still plays
    closer to the input than the encoder's own."""
    wav = speech[:16000].astype(np.float32)
    x = torch.from_numpy(wav)[None, None]

    def played(data: bytes) -> float:
        y = torch.from_numpy(decompress(data, engine))[None, None]
        return float(MEL * MultiScaleMelLoss()(y, x) + CMAG * CompressedMagnitudeLoss()(y, x))

    plain, searched = compress(wav, kbps, engine, hybrid=True), compress(wav, kbps, engine, hybrid=True, search=20)
    assert read_header(io.BytesIO(searched)).low_band_hz == read_header(io.BytesIO(plain)).low_band_hz > 0
    assert played(searched) < played(plain) - 0.01


def test_adam_step_matches_torch_adam():
    torch.manual_seed(0)
    a = torch.randn(1, 8, 20)
    b = a.clone().requires_grad_(True)
    ref, mine = torch.optim.Adam([b], lr=0.8), AdamStep(a, 0.8)
    for _ in range(5):
        g = torch.randn_like(a)
        b.grad = g.clone()
        ref.step()
        mine(g)
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-6)
