"""The file commands in real use: fast errors before the model loads, no torch for info, --threads, --version,
default output names, folders, output formats and rates, stdin and raw PCM, --reference checks."""
import io
import os
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest
import soundfile as sf

from audiocodec import audio, commands
from audiocodec.cli import main

from .conftest import ROOT, SAMPLES

SAMPLE = os.path.join(SAMPLES, "speech_male.wav")
OTHER = os.path.join(SAMPLES, "speech_female.wav")


@pytest.fixture
def clip(tmp_path):
    """1.2 s of speech, 16 kHz mono, as a wav in tmp_path."""
    path = str(tmp_path / "talk.wav")
    sf.write(path, sf.read(SAMPLE)[0][: 19200], 16000, subtype="PCM_16")
    return path


@pytest.fixture
def acdc(tmp_path, clip):
    path = str(tmp_path / "talk.acdc")
    assert main(["compress", clip, path, "-q"]) == 0
    return path


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if a command reaches the model."""
    def refuse(args):
        raise AssertionError("the model was loaded")
    monkeypatch.setattr(commands, "_engine", refuse)


def _python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)


def test_parser_imports_no_torch():
    r = _python("import sys; from audiocodec.cli import build_parser; build_parser(); print('torch' in sys.modules)")
    assert r.stdout.strip() == "False", r.stderr


def test_info_imports_no_torch(acdc):
    r = _python(f"import sys; from audiocodec.cli import main; main(['info', {acdc!r}]); "
                f"print('torch' in sys.modules)")
    assert r.stdout.strip().endswith("False") and "original" in r.stdout, r.stderr


@pytest.mark.parametrize("argv, message", [
    (["compress", "{clip}", "{tmp}/o.acdc", "-b", "5"], "bitrate must be one of"),
    (["compress", "{tmp}/missing.wav", "{tmp}/o.acdc"], "missing.wav: no such file"),
    (["compress", "{tmp}/notes.txt", "{tmp}/o.acdc"], "not a readable audio file"),
    (["compress", "{clip}", "{clip}", "-f"], "is the input; refusing to overwrite it"),
    (["compress", "{clip}", "{tmp}/talk.wav", "-f"], "is the input"),
    (["compress", "{clip}", "{tmp}/exists.acdc"], "already exists (use -f to overwrite)"),
    (["compress", "-"], "stdin (-) needs an output"),
    (["decompress", "{tmp}/trunc.acdc", "{tmp}/o.wav"], "truncated"),
    (["decompress", "{tmp}/exists.acdc", "{tmp}/o.mp4"], "cannot write .mp4; name the output .wav, .flac or .ogg"),
    (["decompress", "{tmp}/exists.acdc", "{tmp}/o.wav", "--reference", "{tmp}/nope.wav"], "nope.wav: no such file"),
    (["decompress", "{tmp}/exists.acdc", "{tmp}/o.wav", "--rate", "5"], "--rate must be 8000..192000 Hz"),
])
def test_mistakes_are_reported_before_the_model_loads(tmp_path, clip, no_model, capsys, argv, message):
    (tmp_path / "notes.txt").write_text("not audio" * 50)
    (tmp_path / "exists.acdc").write_bytes(b"ACDC")
    (tmp_path / "trunc.acdc").write_bytes(_truncated_acdc())
    argv = [a.format(clip=clip, tmp=tmp_path) for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "o.acdc").exists() and not (tmp_path / "o.wav").exists()


def _truncated_acdc() -> bytes:
    """A valid header and the first half of its one chunk (made without the model)."""
    from audiocodec.bitstream.container import Header, encode_chunk, encode_header

    chunk = encode_chunk(10, bytes(150))
    return encode_header(Header(16000, 1, 12, 10, 320, 3200, bytes(8), 500, flags=0)) + chunk[: len(chunk) // 2]


def test_version_and_stray_option_usage(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("audiocodec 0.")
    with pytest.raises(SystemExit) as e:
        main(["decompress", "a.acdc", "--bogus"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "usage: audiocodec decompress" in err and "unrecognized arguments: --bogus" in err
    with pytest.raises(SystemExit):
        main(["--threads", "0", "info", "x.acdc"])
    assert "at least 1" in capsys.readouterr().err


def test_threads_go_to_the_model(tmp_path, clip, monkeypatch):
    from audiocodec import runtime

    seen = []
    monkeypatch.setattr(runtime, "use_threads", lambda n=None: seen.append(n) or n)
    assert main(["compress", clip, str(tmp_path / "a.acdc"), "-q"]) == 0
    assert main(["--threads", "3", "compress", clip, str(tmp_path / "b.acdc"), "-q"]) == 0
    assert main(["decompress", str(tmp_path / "b.acdc"), str(tmp_path / "b.wav"), "-q", "--threads", "2"]) == 0
    assert seen == [1, 3, 2]


def test_default_output_names(tmp_path, clip, capsys):
    assert main(["compress", clip, "-q"]) == 0
    assert (tmp_path / "talk.acdc").exists()
    assert main(["decompress", str(tmp_path / "talk.acdc")]) == 1  # talk.wav is there: the input of compress
    assert "talk.wav: already exists" in capsys.readouterr().err
    os.rename(clip, tmp_path / "original.wav")
    assert main(["decompress", str(tmp_path / "talk.acdc"), "-q"]) == 0
    assert sf.info(clip).samplerate == 16000


def test_folders_in_folders_out(tmp_path, clip, capsys):
    src, packed, restored = tmp_path / "in", tmp_path / "packed", tmp_path / "restored"
    (src / "sub").mkdir(parents=True)
    os.rename(clip, src / "a.wav")
    sf.write(str(src / "sub" / "b.flac"), sf.read(str(src / "a.wav"))[0], 16000)
    (src / "broken.wav").write_bytes(b"not audio" * 20)
    (src / "readme.txt").write_text("ignored")
    assert main(["compress", str(src), str(packed)]) == 1  # one bad file: the rest are done, exit 1
    err = capsys.readouterr().err
    assert "broken.wav" in err and "2 of 3 files" in err and "1 failed" in err
    assert sorted(os.listdir(packed)) == ["a.acdc", "sub"] and os.listdir(packed / "sub") == ["b.acdc"]
    assert main(["decompress", str(packed), str(restored), "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert sf.info(str(restored / "sub" / "b.wav")).frames == 19200


def test_output_format_follows_the_extension(tmp_path, acdc):
    for name, kind in [("o.wav", "WAV"), ("o.flac", "FLAC"), ("o.ogg", "OGG"), ("O.FLAC", "FLAC")]:
        assert main(["decompress", acdc, str(tmp_path / name), "-q"]) == 0
        assert sf.info(str(tmp_path / name)).format == kind
    assert sf.info(str(tmp_path / "o.ogg")).subtype == "VORBIS"


def test_rate_override_resamples(tmp_path, acdc):
    out = str(tmp_path / "o.wav")
    assert main(["decompress", acdc, out, "-q", "--rate", "44100"]) == 0
    i = sf.info(out)
    assert i.samplerate == 44100 and i.channels == 1 and abs(i.frames - 19200 * 44100 // 16000) <= 2


def test_decoding_restores_the_original_rate(tmp_path, capsys):
    x = sf.read(SAMPLE)[0][:19200]
    stereo = audio.soxr.resample(np.stack([x, 0.5 * x], 1), 16000, 44100)
    src, acdc, out = str(tmp_path / "s.wav"), str(tmp_path / "s.acdc"), str(tmp_path / "o.wav")
    sf.write(src, stereo, 44100)
    assert main(["compress", src, acdc]) == 0
    assert "44100 Hz, 2 channel(s): mixed down to mono, resampled from 44100 Hz" in capsys.readouterr().err
    assert main(["info", acdc]) == 0 and "original        44100 Hz stereo" in capsys.readouterr().out
    assert main(["decompress", acdc, out, "-q"]) == 0
    assert sf.info(out).samplerate == 44100 and sf.info(out).channels == 1


def test_compress_says_when_it_converts(tmp_path, capsys):
    x = sf.read(SAMPLE)[0][:19200]
    src = str(tmp_path / "s.wav")
    sf.write(src, audio.soxr.resample(np.stack([x, x], 1), 16000, 44100), 44100)
    assert main(["compress", src, str(tmp_path / "s.acdc")]) == 0
    assert "2 channel(s): mixed down to mono, resampled from 44100 Hz to 16 kHz" in capsys.readouterr().err
    assert main(["compress", src, str(tmp_path / "q.acdc"), "-q"]) == 0
    assert capsys.readouterr().err == ""


class _Stdin:
    def __init__(self, data: bytes):
        self.buffer = io.BytesIO(data)


def test_stdin_is_streamed_like_a_file(tmp_path, clip, monkeypatch):
    a, b = str(tmp_path / "a.acdc"), str(tmp_path / "b.acdc")
    assert main(["compress", clip, a, "-q"]) == 0
    monkeypatch.setattr(sys, "stdin", _Stdin(open(clip, "rb").read()))
    assert main(["compress", "-", b, "-q"]) == 0
    assert open(a, "rb").read() == open(b, "rb").read()


def test_raw_pcm(tmp_path, clip, monkeypatch, capsys):
    x = sf.read(clip, dtype="int16")[0]
    ref, out = str(tmp_path / "ref.acdc"), str(tmp_path / "raw.acdc")
    assert main(["compress", clip, ref, "-q"]) == 0
    for fmt, data in [("s16le", x.astype("<i2").tobytes()), ("f32le", (x / 32768).astype("<f4").tobytes())]:
        monkeypatch.setattr(sys, "stdin", _Stdin(data))
        assert main(["compress", "-", out, "-q", "-f", "--raw", "--raw-format", fmt]) == 0
        assert open(out, "rb").read() == open(ref, "rb").read()
    stereo = np.repeat(audio.soxr.resample(x / 32768, 16000, 48000)[:, None], 2, axis=1)
    monkeypatch.setattr(sys, "stdin", _Stdin((stereo * 32767).astype("<i2").tobytes()))
    assert main(["compress", "-", out, "-f", "--raw", "--raw-rate", "48000", "--raw-channels", "2"]) == 0
    assert " 1.20 s at 6 kbps" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", _Stdin(b""))
    assert main(["compress", "-", out, "-f", "--raw"]) == 1
    assert capsys.readouterr().err == "audiocodec: error: stdin: contains no audio samples\n"
    assert main(["compress", "-", out, "-f", "--raw", "--raw-rate", "7"]) == 1
    assert "--raw-rate must be" in capsys.readouterr().err


def test_empty_stdin_says_stdin(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", _Stdin(b""))
    assert main(["compress", "-", str(tmp_path / "o.acdc")]) == 1
    assert capsys.readouterr().err == "audiocodec: error: stdin: empty input\n"
    monkeypatch.setattr(sys, "stdin", _Stdin(b"text, not audio" * 10))
    assert main(["compress", "-", str(tmp_path / "o.acdc")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("audiocodec: error: stdin: not a readable audio file") and "<" not in err


def test_reference_is_checked_and_compared(tmp_path, acdc, clip, capsys):
    out = str(tmp_path / "o.wav")
    assert main(["decompress", acdc, out, "--reference", str(tmp_path / "nope.wav")]) == 1
    assert not os.path.exists(out)  # checked before anything is written
    assert main(["decompress", acdc, out, "-q", "--reference", clip]) == 0
    err = capsys.readouterr().err
    assert "PESQ-WB" in err and "warning" not in err
    assert main(["decompress", acdc, out, "-q", "-f", "--reference", OTHER]) == 0
    assert "warning: --reference is 3.63 s, the decoded audio 1.20 s" in capsys.readouterr().err
    other = str(tmp_path / "other.wav")
    sf.write(other, sf.read(OTHER)[0][16000:16000 + 19200], 16000)
    assert main(["decompress", acdc, out, "-q", "-f", "--reference", other]) == 0
    err = capsys.readouterr().err
    assert "--reference looks like a different clip" in err and "warning: --reference is" not in err


def test_a_file_of_another_model_is_named(acdc, tmp_path, monkeypatch, capsys):
    from audiocodec.stream.engine import Engine

    monkeypatch.setattr(Engine, "model_id", property(lambda self: b"\xab" * 8))
    assert main(["decompress", acdc, str(tmp_path / "o.wav")]) == 1
    assert "was made with model" in capsys.readouterr().err and not (tmp_path / "o.wav").exists()


def test_decompress_writes_into_a_pipe(tmp_path, acdc):
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    assert main(["decompress", acdc, fifo, "-f", "-q"]) == 0
    reader.join(10)
    assert got[0][:4] == b"RIFF" and len(got[0]) == 44 + 2 * 19200
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and not [f for f in os.listdir(tmp_path) if f.endswith(".part")]


def test_quiet_hides_the_progress_bar():
    assert commands._progress(10.0, "x", quiet=True).disable
