"""The compress / decompress / info command line, in-process and as a real subprocess."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from audiocodec.cli import main

from .conftest import SAMPLES

SAMPLE = os.path.join(SAMPLES, "speech_male.wav")


def run(*argv):
    return main(list(argv))


@pytest.mark.parametrize("kbps", ["1.5", "3", "6", "12"])
def test_round_trip_every_bitrate(tmp_path, kbps, capsys):
    acdc, out = str(tmp_path / "x.acdc"), str(tmp_path / "x.wav")
    assert run("compress", SAMPLE, acdc, "--bitrate", kbps) == 0
    assert run("decompress", acdc, out) == 0
    x, _ = sf.read(SAMPLE)
    y, sr = sf.read(out, dtype="int16")
    assert sr == 16000 and len(y) == len(x) and y.dtype == np.int16
    rows = {"1.5": "4 codebooks", "3": "pitch + 5 codebooks", "6": "pitch + 11 codebooks", "12": "pitch + 23 codebooks"}
    assert f"({rows[kbps]}" in capsys.readouterr().err  # the shipped model sends the pitch from 3 kbps up
    assert run("info", acdc) == 0
    text = capsys.readouterr().out
    assert f"{float(kbps):g} kbps mode" in text and "format version  4" in text
    # the codes never take more than their fixed-rate budget, and on speech fit the nominal rate (1.5 kbps: four
    # codebooks, context-coded); the rest is the header, chunk and end framing
    from audiocodec.bitstream import container
    from audiocodec.stream.modes import mode

    framing = container.HEADER_SIZE_V4 + container.CHUNK_OVERHEAD + container.END_SIZE
    bits, frames = (os.path.getsize(acdc) - framing) * 8, -(-len(x) // 320)
    assert bits <= mode(float(kbps)).neural_kbps * 1000 * frames / 50 and bits <= float(kbps) * 1000 * frames / 50


def test_entropy_coding_never_costs_bytes(tmp_path, engine):
    """Each chunk is range-coded only where that is smaller, so the default is never larger than --fixed-rate."""
    a, b = str(tmp_path / "e.acdc"), str(tmp_path / "f.acdc")
    assert engine.entropy is not None
    assert run("compress", SAMPLE, a, "-b", "6") == 0
    assert run("compress", SAMPLE, b, "-b", "6", "--fixed-rate") == 0
    assert os.path.getsize(a) <= os.path.getsize(b)
    ya, yb = str(tmp_path / "a.wav"), str(tmp_path / "b.wav")
    assert run("decompress", a, ya) == 0 and run("decompress", b, yb) == 0
    assert np.array_equal(sf.read(ya)[0], sf.read(yb)[0])  # same codes, same audio


def test_1_5_kbps_sends_four_codebooks_coded_and_three_fixed_rate(tmp_path, engine, speech):
    """Context-coded, four codebooks fit 1.5 kbps; fixed-rate, three do (10 bits each). Files of three
    context-coded rows (the 1.5 kbps stream before 2026-12-05) still decode and are named 1.5 kbps."""
    import io

    import torch

    from audiocodec.bitstream.container import read_header
    from audiocodec.compress import compress, decompress, encode_blocks
    from audiocodec.info import read_info
    from audiocodec.stream.modes import Mode, find, mode

    coded, fixed = compress(speech, 1.5, engine), compress(speech, 1.5, engine, entropy=False)
    assert [read_header(io.BytesIO(d)).n_q for d in (coded, fixed)] == [4, 3]
    assert read_info(io.BytesIO(fixed))["bitrate_kbps"] == 1.5 and find(3) == mode(1.5).coded(context=False)
    old = encode_blocks([speech], Mode(1.5, 3), engine)  # the earlier 1.5 kbps stream, context-coded
    head, info = read_header(io.BytesIO(old)), read_info(io.BytesIO(old))
    assert head.n_q == 3 and head.context_coded and info["bitrate_kbps"] == 1.5
    ref = engine.codec.decode(engine.codec.encode(torch.from_numpy(speech), 3))[0, 0, :len(speech)].numpy()
    assert np.abs(decompress(old, engine) - ref).max() < 1e-4 and np.abs(decompress(fixed, engine) - ref).max() < 1e-4


def test_chunk_boundaries_match_one_shot(tmp_path, engine, speech):
    """25 s spans three 10 s chunks; chunked streaming equals decoding the whole file at once."""
    import torch

    from audiocodec.compress import decompress, encode_blocks
    from audiocodec.stream.modes import mode

    long = np.concatenate([speech] * 7)[: 25 * 16000]
    blocks = [long[i:i + 7777] for i in range(0, len(long), 7777)]
    data = encode_blocks(blocks, mode(3.0), engine)
    y = decompress(data, engine)
    assert len(y) == len(long)
    ref = engine.codec.decode(engine.codec.encode(torch.from_numpy(long), 6))[0, 0, : len(long)].numpy()
    assert np.abs(y - ref).max() < 1e-3


def test_stdin_stdout(tmp_path):
    with open(SAMPLE, "rb") as f:
        wav = f.read()
    cmd = [sys.executable, "-m", "audiocodec.cli"]
    acdc = subprocess.run(cmd + ["compress", "-", "-", "-q"], input=wav, capture_output=True, check=True).stdout
    assert acdc[:4] == b"ACDC"
    out = subprocess.run(cmd + ["decompress", "-", "-", "-q"], input=acdc, capture_output=True, check=True).stdout
    assert out[:4] == b"RIFF"
    info = subprocess.run(cmd + ["info", "-", "--json"], input=acdc, capture_output=True, check=True).stdout
    assert b'"format_version": 4' in info


def _folder(path):
    os.mkdir(path)
    return str(path)


def _bad(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file"),
    ("directory", "no .acdc files in this folder"),
    ("empty", "empty file"),
    ("wav_as_acdc", "bad magic"),
    ("truncated", "truncated"),
    ("flipped", "checksum"),
    ("future", "newer than this audiocodec"),
    ("wrong_model", "made with model|end record does not match"),  # a forged header: the CRC chain sees it
])
def test_decompress_bad_input(tmp_path, capsys, case, message):
    acdc = str(tmp_path / "good.acdc")
    assert run("compress", SAMPLE, acdc, "-q") == 0
    good = open(acdc, "rb").read()
    bad = {
        "missing": str(tmp_path / "nope.acdc"),
        "directory": lambda: _folder(tmp_path / "nothing"),
        "empty": lambda: _bad(tmp_path, "e.acdc", b""),
        "wav_as_acdc": lambda: SAMPLE,
        "truncated": lambda: _bad(tmp_path, "t.acdc", good[:-7]),
        "flipped": lambda: _bad(tmp_path, "f.acdc", good[:80] + bytes([good[80] ^ 4]) + good[81:]),
        "future": lambda: _bad(tmp_path, "v.acdc", good[:4] + b"\x07" + good[5:]),
        "wrong_model": lambda: _rehash(tmp_path, good),
    }[case]
    path = bad() if callable(bad) else bad
    out = str(tmp_path / "out.wav")
    capsys.readouterr()
    assert run("decompress", path, out) == 1
    err = capsys.readouterr().err
    assert re.search(message, err) and err.count("\n") == 1 and "Traceback" not in err
    assert not os.path.exists(out) and not [f for f in os.listdir(tmp_path) if f.endswith(".part")]


def _rehash(tmp_path, good):
    """Same file, another model id, valid header checksum."""
    import struct
    import zlib

    body = bytearray(good[:54])
    body[25:33] = b"\xab" * 8
    return _bad(tmp_path, "m.acdc", bytes(body) + struct.pack("<I", zlib.crc32(bytes(body))) + good[58:])


def test_compress_bad_input_and_overwrite(tmp_path, capsys):
    txt = _bad(tmp_path, "notes.txt", b"not audio" * 100)
    assert run("compress", txt, str(tmp_path / "a.acdc")) == 1
    assert "not a readable audio file" in capsys.readouterr().err
    out = str(tmp_path / "b.acdc")
    assert run("compress", SAMPLE, out, "-q") == 0
    assert run("compress", SAMPLE, out, "-q") == 1
    assert "already exists" in capsys.readouterr().err
    assert run("compress", SAMPLE, out, "-q", "-f") == 0
    assert run("compress", SAMPLE, out, "-f", "-b", "5") == 1
    assert "bitrate must be one of" in capsys.readouterr().err


def test_compress_search_from_the_command_line(tmp_path, capsys):
    """--search: a file any decoder plays, at 6 kbps; a clear one-line error where it does not apply (1.5 kbps) or for
    a bad count."""
    out = str(tmp_path / "s.acdc")
    assert run("compress", SAMPLE, out, "-q", "--search", "2") == 0
    assert run("decompress", out, str(tmp_path / "s.wav"), "-q") == 0
    assert run("compress", SAMPLE, str(tmp_path / "t.acdc"), "-b", "1.5", "--search", "2") == 1
    assert "--search works at 3, 6 and 12 kbps and in the hybrid modes, not at 1.5 kbps" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run("compress", SAMPLE, str(tmp_path / "t.acdc"), "--search", "-3")
    assert "--search takes a whole number of steps from 0 to 1000" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "t.acdc")


def test_help_teaches(capsys):
    with pytest.raises(SystemExit):
        run("compress", "--help")
    assert "examples:" in capsys.readouterr().out


def test_range_coded_chunks_round_trip(engine, speech):
    """With code frequencies that fit the audio, chunks are range-coded, smaller, and decode to the same audio."""
    import io

    import torch

    from audiocodec.bitstream.entropy import EntropyModel
    from audiocodec.compress import compress, decompress
    from audiocodec.info import read_info
    from audiocodec.stream.engine import Engine

    codec = engine.codec
    codes = codec.encode(torch.from_numpy(speech), codec.max_rows)[0].numpy()
    counts = np.zeros((codec.max_rows, 1024), dtype=np.int64)  # a table per stage (and the pitch's, if sent)
    for table, row in zip(codec.row_tables(codec.max_rows), codes):
        counts[table] = np.bincount(row, minlength=1024) * 100
    fitted = Engine(engine.codec, EntropyModel(counts, engine.codec.model_id))
    ranged, fixed = compress(speech, 6.0, fitted), compress(speech, 6.0, fitted, entropy=False)
    assert read_info(io.BytesIO(ranged))["range_coded_chunks"] == 1 and len(ranged) < 0.9 * len(fixed)
    assert np.array_equal(decompress(ranged, fitted), decompress(fixed, fitted))


def test_hybrid_round_trip(tmp_path, capsys):
    acdc, out = str(tmp_path / "h.acdc"), str(tmp_path / "h.wav")
    assert run("compress", SAMPLE, acdc, "-b", "6", "--hybrid") == 0
    assert "(pitch + 5 codebooks + low band < 600 Hz" in capsys.readouterr().err
    assert run("info", acdc) == 0
    text = capsys.readouterr().out
    assert "6 kbps hybrid mode: neural 3 kbps" in text and "format version  4" in text
    assert run("decompress", acdc, out, "--reference", SAMPLE) == 0
    assert "PESQ-WB" in capsys.readouterr().err and len(sf.read(out)[0]) == len(sf.read(SAMPLE)[0])
    assert run("compress", SAMPLE, str(tmp_path / "x.acdc"), "-b", "3", "--hybrid") == 1
    assert "hybrid bitrate must be one of 6, 12" in capsys.readouterr().err


def test_postfilter_is_off_unless_asked_for(tmp_path):
    acdc, a, b = str(tmp_path / "x.acdc"), str(tmp_path / "a.wav"), str(tmp_path / "b.wav")
    assert run("compress", SAMPLE, acdc, "-b", "3") == 0
    assert run("decompress", acdc, a) == 0 and run("decompress", acdc, b, "--postfilter", "1.1") == 0
    with pytest.raises(SystemExit):  # argparse refuses an exponent below 1
        run("decompress", acdc, str(tmp_path / "d.wav"), "--postfilter", "0.5")
    ya, yb = sf.read(a)[0], sf.read(b)[0]
    assert len(ya) == len(yb) and not np.allclose(ya, yb, atol=1e-3)
    assert run("decompress", acdc, str(tmp_path / "c.wav")) == 0
    assert np.array_equal(sf.read(str(tmp_path / "c.wav"))[0], ya)  # the switch does not stick to the model


def test_band_limited_input_keeps_its_level(tmp_path, capsys):
    """8 kHz input comes out of the model 2.5-3 dB quiet; the encoder measures that and the decoder makes up
    for it (the header's output gain), while 16 kHz input is left as it was."""
    import soxr

    x, _ = sf.read(SAMPLE, dtype="float32")
    narrow = str(tmp_path / "n.wav")
    sf.write(narrow, soxr.resample(x, 16000, 8000), 8000)
    for src, gain in ((narrow, True), (SAMPLE, False)):
        acdc, out = str(tmp_path / "x.acdc"), str(tmp_path / "x.wav")
        assert run("compress", src, acdc, "-b", "6", "-f") == 0
        assert run("info", acdc) == 0
        assert ("output gain     +" in capsys.readouterr().out) == gain
        assert run("decompress", acdc, out, "-f") == 0
        y, rate = sf.read(out, dtype="float32")
        a, _ = sf.read(src, dtype="float32")
        level = 10 * np.log10(np.mean(y ** 2) / np.mean(a ** 2))
        assert rate == (8000 if gain else 16000) and abs(level) < (0.3 if gain else 1.0), level
