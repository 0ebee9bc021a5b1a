"""``audiocodec.info.read_info``: no torch, the input's layout, the exact size of every version, and what
it checked (and what not)."""
import io
import subprocess
import sys

import numpy as np

from audiocodec.bitstream import container
from audiocodec.compress import encode_blocks
from audiocodec.info import read_info
from audiocodec.stream.modes import mode


def test_info_imports_without_torch():
    code = "import sys; from audiocodec.info import read_info; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def _as_old(data: bytes) -> bytes:
    """The same content as version 1 (2 with a low band), as older audiocodec wrote it."""
    f = io.BytesIO(data)
    h = container.read_header(f)
    chunks = []
    for n, payload, marker, low in container.read_chunks(f, h):
        chunks.append(container.encode_chunk(n, payload, marker=marker))
        if low is not None:
            chunks.append(container.encode_chunk(low[0], low[1], marker=container.CHUNK_LOW))
    old = container.replace(h, version=container.VERSION_LOW_BAND if h.low_band_hz else container.VERSION)
    return container.encode_header(old) + b"".join(chunks)


def test_the_format_records_the_input_and_every_size_is_exact(engine, speech):
    for hybrid in (False, True):
        data = encode_blocks([speech[:8000]], mode(6.0, hybrid), engine, input_rate=44100, input_channels=2)
        info = read_info(io.BytesIO(data))
        assert info["format_version"] == 4 and info["size_bytes"] == len(data)
        assert (info["input_rate"], info["input_channels"]) == (44100, 2)
        assert any("end record" in c for c in info["checked"]) and any("order" in c for c in info["checked"])
        assert any("weights" in c for c in info["not_checked"]) and any("decode" in c for c in info["not_checked"])
        fixed = encode_blocks([speech[:8000]], mode(6.0, hybrid), engine, entropy=False, input_rate=44100,
                              input_channels=2)
        old = _as_old(fixed)  # versions 1 and 2 hold fixed-rate and table-coded chunks, not context-coded ones
        old_info = read_info(io.BytesIO(old))
        assert old_info["format_version"] == (2 if hybrid else 1) and old_info["size_bytes"] == len(old)
        assert (old_info["input_rate"], old_info["input_channels"]) == (16000, 1)
        assert not any("end record" in c for c in old_info["checked"])
        assert len(fixed) - len(old) == 58 - (44 if hybrid else 40) + container.END_SIZE
    default = encode_blocks([np.zeros(500, np.float32)], mode(3.0), engine)
    assert read_info(io.BytesIO(default))["input_rate"] == 16000
