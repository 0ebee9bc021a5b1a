"""Bit packing, range coding and the .acdc container, including thousands of corrupted files."""
import io
import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audiocodec.bitstream import container
from audiocodec.errors import CodecError
from audiocodec.bitstream.container import FormatError, Header, encode_chunk, encode_header, read_chunks, read_header
from audiocodec.bitstream.entropy import EntropyModel, decode_fixed, encode_fixed
from audiocodec.bitstream.packing import pack_codes, packed_size, unpack_codes


@given(st.lists(st.integers(0, 1023), max_size=300), st.integers(10, 10))
def test_pack_round_trip(codes, bits):
    data = pack_codes(np.array(codes, dtype=np.int64), bits)
    assert len(data) == packed_size(len(codes), bits)
    assert unpack_codes(data, len(codes), bits).tolist() == codes


def test_pack_rejects_out_of_range():
    with pytest.raises(ValueError):
        pack_codes(np.array([1024]), 10)
    with pytest.raises(ValueError):
        unpack_codes(b"\x00", 2, 10)


def test_entropy_round_trip_and_saving(rng):
    probs = rng.dirichlet(np.full(1024, 0.05), size=4)          # skewed, like real code usage
    counts = (probs * 1e6).astype(np.int64)
    model = EntropyModel(counts, "test")
    codes = np.stack([rng.choice(1024, 500, p=p / p.sum()) for p in model.probs])
    data = model.encode(codes, [0, 1, 2, 3])
    assert np.array_equal(model.decode(data, [0, 1, 2, 3], 500), codes)
    swapped = model.encode(codes[::-1], [3, 2, 1, 0])  # rows may use any table (a pitch row uses its own)
    assert np.array_equal(model.decode(swapped, [3, 2, 1, 0], 500), codes[::-1])
    assert len(data) < 0.9 * len(encode_fixed(codes, 10))
    assert np.array_equal(decode_fixed(encode_fixed(codes, 10), 4, 500, 10), codes)


def test_entropy_coder_handles_unseen_codes():
    counts = np.zeros((1, 1024), dtype=np.int64)
    counts[0, 0] = 10 ** 6
    model = EntropyModel(counts, "test")
    codes = np.array([[0, 1023, 5, 0]])
    assert np.array_equal(model.decode(model.encode(codes, [0]), [0], 4), codes)


def _header(**kw):
    base = dict(sample_rate=16000, channels=1, n_q=3, bits=10, frame_size=320, num_samples=3200,
                model_id=b"\x01" * 8, frames_per_chunk=4, flags=0)
    base.update(kw)
    return Header(**base)


def _fixed_file(h: Header, rng) -> bytes:
    """A version 1 (or 2) file, as audiocodec wrote them before version 3: the reader keeps reading them."""
    out, left = [encode_header(h)], h.num_frames
    while left:
        n = min(left, h.frames_per_chunk)
        out.append(encode_chunk(n, encode_fixed(rng.integers(0, 1024, (h.n_q, n)), 10)))
        left -= n
    return b"".join(out)


def test_container_round_trip(rng):
    h = _header()
    data = _fixed_file(h, rng)
    f = io.BytesIO(data)
    assert read_header(f) == h
    chunks = list(read_chunks(f, h))
    assert [n for n, _, _, _ in chunks] == [4, 4, 2] and container.HEADER_SIZE == 40
    assert all(m == container.CHUNK_FIXED for _, _, m, _ in chunks) and all(low is None for *_, low in chunks)
    assert data[4] == 1  # a file without the low band stays version 1


def _hybrid_file(h: Header, rng, low_frames=None) -> bytes:
    """Codes chunks each followed by a low-band chunk (one frame more in the last), random payloads."""
    out, left = [encode_header(h)], h.num_frames
    while left:
        n = min(left, h.frames_per_chunk)
        out.append(encode_chunk(n, encode_fixed(rng.integers(0, 1024, (h.n_q, n)), 10)))
        frames = n + (n == left) if low_frames is None else low_frames
        out.append(encode_chunk(frames, rng.bytes(8 * frames), marker=container.CHUNK_LOW))
        left -= n
    return b"".join(out)


def test_low_band_container_round_trip(rng):
    h = _header(low_band_hz=600, low_band_snr=12)
    data = _hybrid_file(h, rng)
    assert data[4] == 2 and h.version == 2
    f = io.BytesIO(data)
    assert read_header(f) == h
    chunks = list(read_chunks(f, h))
    assert [(n, low[0], len(low[1])) for n, _, _, low in chunks] == [(4, 4, 32), (4, 4, 32), (2, 3, 24)]


@pytest.mark.parametrize("damage, message", [
    (lambda d: d[:-40], "truncated"),
    (lambda d: d[:44 + 27], "low band of chunk 0 missing"),
    (lambda d: d[:44 + 27] + b"XX" + d[44 + 27 + 2:], "bad low-band chunk marker"),
])
def test_low_band_chunks_are_checked(rng, damage, message):
    h = _header(low_band_hz=600, low_band_snr=12)
    with pytest.raises(FormatError, match=message):
        f = io.BytesIO(damage(_hybrid_file(h, rng)))
        list(read_chunks(f, read_header(f)))
    with pytest.raises(FormatError, match="low band has 5 frames, expected 4"):
        f = io.BytesIO(_hybrid_file(h, rng, low_frames=5))
        list(read_chunks(f, read_header(f)))
    huge = encode_header(h) + encode_chunk(4, encode_fixed(rng.integers(0, 1024, (3, 4)), 10)) \
        + struct.pack("<2sHI", b"LB", 4, 2 ** 31) + b"\0" * 4
    with pytest.raises(FormatError, match="bad low-band payload length"):
        f = io.BytesIO(huge)
        list(read_chunks(f, read_header(f)))


@pytest.mark.parametrize("mutate, message", [
    (lambda d: b"", "empty file"),
    (lambda d: b"RIFF" + d[4:], "bad magic"),
    (lambda d: d[:20], "header cut short"),
    (lambda d: d[:4] + bytes([9]) + d[5:], "newer than this audiocodec reads"),
    (lambda d: d[:10] ^ 0 if False else d[:12] + bytes([d[12] ^ 0xFF]) + d[13:], "header checksum"),
    (lambda d: d[:-5], "truncated"),
    (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "checksum mismatch"),
    (lambda d: d + b"\x00", "unexpected bytes"),
    (lambda d: d[:40], "chunk 0 missing"),
])
def test_container_rejects_damage(rng, mutate, message):
    data = mutate(_fixed_file(_header(), rng))
    with pytest.raises(FormatError) as e:
        f = io.BytesIO(data)
        h = read_header(f)
        list(read_chunks(f, h))
    assert message in str(e.value)


def _forge(**kw) -> bytes:
    """A header with a valid checksum but hostile values."""
    return encode_header(_header(**kw))  # the writer does not check; the reader must


@pytest.mark.parametrize("kw, message", [
    (dict(num_samples=2 ** 40), "absurd length"),
    (dict(num_samples=0), "absurd length"),
    (dict(frames_per_chunk=60000), "absurd chunk size"),
    (dict(sample_rate=44100), "unsupported layout"),
    (dict(flags=0x80), "unknown flags"),
    (dict(n_q=200), "out of range"),
    (dict(low_band_hz=600, low_band_snr=99), "low band out of range"),
])
def test_absurd_header_values(kw, message):
    with pytest.raises(FormatError) as e:
        read_header(io.BytesIO(_forge(**kw)))
    assert message in str(e.value)


def test_range_chunk_needs_the_flag(rng):
    h = _header()
    data = encode_header(h) + encode_chunk(4, b"\0" * 8, range_coded=True)
    f = io.BytesIO(data)
    with pytest.raises(FormatError, match="bad chunk marker"):
        list(read_chunks(f, read_header(f)))


def test_absurd_chunk_length_is_not_allocated():
    h = _header(flags=1)
    data = encode_header(h) + struct.pack("<2sHI", b"CR", 4, 2 ** 31) + b"\0" * 4
    f = io.BytesIO(data)
    with pytest.raises(FormatError, match="bad payload length"):
        list(read_chunks(f, read_header(f)))


def test_mutation_fuzz_never_crashes(engine, speech):
    """Thousands of corrupted real files: every one is either decoded or rejected with FormatError."""
    from audiocodec.compress import compress
    from audiocodec.info import read_info

    good = compress(speech[:16000], 3.0, engine)
    r = np.random.default_rng(7)
    outcomes = {"ok": 0, "rejected": 0}
    for i in range(3000):
        d = bytearray(good)
        kind = i % 4
        if kind == 0:                                 # flip random bits
            for _ in range(r.integers(1, 4)):
                d[r.integers(len(d))] ^= 1 << r.integers(8)
        elif kind == 1:                               # truncate
            d = d[: r.integers(len(d))]
        elif kind == 2:                               # overwrite a run with random bytes
            s = r.integers(len(d))
            d[s:s + 8] = r.integers(0, 256, 8, dtype=np.uint8).tobytes()
        else:                                         # insert garbage
            s = r.integers(len(d))
            d[s:s] = r.integers(0, 256, r.integers(1, 20), dtype=np.uint8).tobytes()
        try:
            read_info(io.BytesIO(bytes(d)))
            outcomes["ok"] += 1
        except FormatError:
            outcomes["rejected"] += 1
    assert outcomes["rejected"] > 2900  # CRCs catch (almost) everything


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(data):
    try:
        f = io.BytesIO(data)
        list(read_chunks(f, read_header(f)))
    except FormatError:
        pass


def _v3_chunks(h: Header, rng) -> list:
    """(n_frames, payload, range_coded, marker) of a file for ``h``: codes chunks, each followed by a low-band
    chunk when ``h`` has a low band."""
    out, left = [], h.num_frames
    while left:
        n = min(left, h.frames_per_chunk)
        out.append((n, encode_fixed(rng.integers(0, 1024, (h.n_q, n)), 10), False, None))
        if h.low_band_hz:
            out.append((n + (n == left), rng.bytes(8 * (n + (n == left))), False, container.CHUNK_LOW))
        left -= n
    return out


def _read_all(data: bytes):
    f = io.BytesIO(data)
    h = read_header(f)
    return h, list(read_chunks(f, h))


@pytest.mark.parametrize("low", [{}, dict(low_band_hz=600, low_band_snr=12)])
def test_current_version_round_trip(rng, low):
    h = _header(input_rate=44100, input_channels=2, **low)
    chunks = _v3_chunks(h, rng)
    data = container.encode_file(h, chunks)
    assert data[4] == 4 and data[5] == container.HEADER_SIZE_V4 == 58
    got, read = _read_all(data)
    assert got == container.replace(h, version=4) and got.size == 58
    assert (got.input_rate, got.input_channels, got.low_band_hz) == (44100, 2, low.get("low_band_hz", 0))
    codes = [c for c in chunks if c[3] is None]
    assert [(n, p) for n, p, _, _ in read] == [(n, p) for n, p, _, _ in codes]
    assert len(data) == 58 + sum(12 + len(p) for _, p, _, _ in chunks) + container.END_SIZE
    w = container.Writer()  # the streaming writer: chunks first, the header when the length is known
    body = [w.chunk(*c) for c in chunks]
    header, end = w.finish(h)
    assert header + b"".join(body) + end == data


def _records(data: bytes, h: Header) -> tuple[bytes, list[bytes]]:
    """Split a version-3 file into its header and its records (chunks, then the end record)."""
    at, records = h.size, []
    while at < len(data):
        n = 12 + struct.unpack_from("<I", data, at + 4)[0]
        records.append(data[at:at + n])
        at += n
    return data[:h.size], records


@pytest.mark.parametrize("edit, message", [
    (lambda r: [r[1], r[0], *r[2:]], "chunk 0: checksum mismatch"),            # swapped
    (lambda r: [r[0], r[0], *r[1:]], "chunk 1: checksum mismatch"),            # duplicated
    (lambda r: [r[0], *r[2:]], "chunk 1: checksum mismatch"),                  # dropped
    (lambda r: r[:-1], "end record missing"),                                  # truncated after a chunk
    (lambda r: [*r[:-1], r[0], r[-1]], "chunk after the last frame"),          # one repeated at the end
    (lambda r: [*r[:-1], r[-1][:-4] + b"\0" * 4], "end record"),               # end record edited
])
def test_version_3_refuses_moved_chunks(rng, edit, message):
    h = _header(num_samples=320 * 10)
    data = container.encode_file(h, _v3_chunks(h, rng))
    head, records = _records(data, read_header(io.BytesIO(data)))
    assert len(records) == 4  # chunks of 4, 4, 2 frames and the end record
    with pytest.raises(FormatError, match=message):
        _read_all(head + b"".join(edit(records)))


def test_chained_versions_refuse_chunks_of_another_file(rng):
    h = _header()
    a = container.encode_file(h, _v3_chunks(h, rng))
    b = container.encode_file(container.replace(h, input_rate=48000), _v3_chunks(h, rng))
    _, ra = _records(a, read_header(io.BytesIO(a)))
    _, rb = _records(b, read_header(io.BytesIO(b)))
    with pytest.raises(FormatError, match="chunk 1: checksum mismatch"):  # spliced: a's first chunk, b's others
        _read_all(b[:58] + ra[0] + b"".join(rb[1:]))
    with pytest.raises(FormatError, match="end record does not match the header"):  # b's header, all of a's chunks
        _read_all(b[:58] + a[58:])


def test_writer_refuses_what_readers_refuse(rng):
    w = container.Writer()
    with pytest.raises(CodecError, match="at most 24 h; split the input") as e:
        w.finish(_header(num_samples=container.MAX_SAMPLES + 1))
    assert not isinstance(e.value, FormatError)
    h = _header(num_samples=container.MAX_SAMPLES, version=3)  # exactly one day: the reader takes it
    assert read_header(io.BytesIO(encode_header(h))).num_samples == container.MAX_SAMPLES
    with pytest.raises(CodecError, match="cannot write a file readers refuse: input layout"):
        container.Writer().finish(_header(num_samples=320, input_rate=0))
    with pytest.raises(CodecError, match="1 frames for 10"):
        w = container.Writer()
        w.chunk(1, b"\0" * 4)
        w.finish(_header())
    with pytest.raises(CodecError, match="bad payload length"):  # a chunk the reader would refuse
        container.encode_file(_header(), [(4, b"\0" * 16, False, None), (4, b"\0" * 15, False, None),
                                          (2, b"\0" * 8, False, None)])


def test_bitstream_and_transport_import_without_torch():
    code = ("import sys\nclass Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'torch' or name.startswith('torch.'): raise ImportError('torch blocked')\n"
            "sys.meta_path.insert(0, Block())\n"
            "import audiocodec.bitstream.container, audiocodec.bitstream.entropy, audiocodec.bitstream.packing\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr
