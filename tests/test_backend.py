"""The optional ONNX Runtime backend of the decoder backbone (``model/onnx_backend.py``): its output matches
torch's offline and streaming, the codes (so the .acdc bytes) stay the same, and torch is the default.
Also ``runtime.keep_freed_memory``. Skipped where onnxruntime is not installed."""
import numpy as np
import pytest
import torch

from audiocodec.model import load_default
from audiocodec.model.layers import StreamingModule
from audiocodec.model.streaming import StreamingDecoder
from audiocodec.runtime import keep_freed_memory

N_Q = 12


@pytest.fixture(scope="module")
def codecs():
    """(a torch codec, the same weights on ONNX Runtime)."""
    pytest.importorskip("onnxruntime")
    return load_default(), load_default().use_backend("onnx")


def _streamed(codec, codes: torch.Tensor, sizes=(1, 3, 7, 2)) -> np.ndarray:
    """codes (1, n_q, T) pushed in chunks of ``sizes`` frames (cycled) -> all the samples, flush included."""
    dec, out, i, k = StreamingDecoder(codec), [], 0, 0
    while i < codes.shape[2]:
        n = sizes[k % len(sizes)]
        out.append(dec.push(codes[0, :, i:i + n].numpy()))
        i, k = i + n, k + 1
    return np.concatenate(out + [dec.flush()])


@pytest.fixture(scope="module")
def codes(codecs, speech):
    return codecs[0].encode(torch.from_numpy(speech[: 16000 * 2]), N_Q)


def test_onnx_decode_matches_torch(codecs, codes):
    ref, fast = (c.decode(codes) for c in codecs)
    assert fast.shape == ref.shape
    assert (fast - ref).abs().max() < 1e-3 * ref.abs().max()


def test_onnx_streams_like_its_offline_decode(codecs, codes):
    torch_codec, onnx_codec = codecs
    offline = onnx_codec.decode(codes)[0, 0].numpy()
    streamed = _streamed(onnx_codec, codes)
    assert streamed.shape == offline.shape
    assert np.abs(streamed - offline).max() < 1e-3 * np.abs(offline).max()
    assert np.abs(streamed - _streamed(torch_codec, codes)).max() < 1e-3 * np.abs(offline).max()


def test_onnx_keeps_the_codes_and_the_model(codecs, codes, speech):
    torch_codec, onnx_codec = codecs
    assert torch.equal(onnx_codec.encode(torch.from_numpy(speech[: 16000 * 2]), N_Q), codes)
    assert all(m.stream is None for m in onnx_codec.modules() if isinstance(m, StreamingModule))


def test_onnx_batches(codecs, codes):
    _, onnx_codec = codecs
    two = onnx_codec.decode(torch.cat([codes, codes.flip(2)]))
    assert torch.allclose(two[:1], onnx_codec.decode(codes), atol=1e-5)


def test_backend_is_torch_by_default_and_switches_back(codes, monkeypatch):
    monkeypatch.delenv("AUDIOCODEC_BACKEND", raising=False)
    codec = load_default()
    ref = codec.decode(codes)
    assert codec.decoder.runner is None
    with pytest.raises(ValueError):
        codec.use_backend("tensorrt")
    pytest.importorskip("onnxruntime")
    codec.use_backend("onnx").use_backend("torch")
    assert torch.equal(codec.decode(codes), ref)  # bit for bit


def test_the_environment_names_the_backend(monkeypatch):
    pytest.importorskip("onnxruntime")
    from audiocodec.model.onnx_backend import OnnxDecoder

    monkeypatch.setenv("AUDIOCODEC_BACKEND", "onnx")
    assert isinstance(load_default().decoder.runner, OnnxDecoder)


def test_training_runs_the_torch_layers(codecs, codes):
    _, onnx_codec = codecs
    z = torch.randn(1, onnx_codec.cfg.latent_dim, 5)
    onnx_codec.decoder.train()
    try:
        assert onnx_codec.decoder(z).requires_grad
    finally:
        onnx_codec.decoder.eval()


def test_keep_freed_memory_is_harmless():
    assert keep_freed_memory() in (True, False)
    assert keep_freed_memory() is keep_freed_memory()


def test_use_threads_sets_torch_and_numpys_blas():
    """The model's thread count applies to numpy's BLAS too (the context model's products), not only torch."""
    from threadpoolctl import threadpool_info

    from audiocodec.runtime import use_threads

    before = torch.get_num_threads()
    try:
        for n in (2, 1):
            assert use_threads(n) == n and torch.get_num_threads() == n
            assert all(i["num_threads"] == n for i in threadpool_info() if i["user_api"] == "blas")
    finally:
        use_threads(before)
