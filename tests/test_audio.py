"""The audio loader: any rate/depth/channels in, mono 16 kHz out; clear errors for bad input. Output files:
atomic, cp's modes, devices and pipes written into, one-line errors, temp parts removed."""
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from audiocodec import audio, output
from audiocodec.errors import CodecError


def test_resamples_and_mixes_to_mono(tmp_path):
    t = np.arange(44100) / 44100
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([tone, tone], 1)
    for subtype, ext in [("PCM_24", "wav"), ("FLOAT", "wav"), ("PCM_16", "flac"), ("VORBIS", "ogg")]:
        p = str(tmp_path / f"x_{subtype}.{ext}")
        sf.write(p, stereo, 44100, subtype=subtype)
        x = audio.load(p)
        assert x.dtype == np.float32 and abs(len(x) - 16000) <= 16
        assert 0.3 < np.abs(x[1000:-1000]).max() < 0.6


def test_iter_blocks_matches_load(tmp_path):
    p = str(tmp_path / "long.wav")
    sf.write(p, np.random.default_rng(0).uniform(-0.5, 0.5, 48000 * 3), 48000)
    whole = audio.load(p)
    joined = np.concatenate(list(audio.iter_blocks(p, block_seconds=0.7)))
    assert abs(len(joined) - len(whole)) <= 2
    n = min(len(whole), len(joined))
    assert np.abs(joined[100:n - 100] - whole[100:n - 100]).max() < 1e-3


@pytest.mark.parametrize("make, message", [
    (lambda d: str(d / "missing.wav"), "no such file"),
    (lambda d: str(d), "is a directory"),
    (lambda d: _write(d / "empty.wav", b""), "empty file"),
    (lambda d: _write(d / "text.wav", b"hello, this is not audio at all" * 10), "not a readable audio file"),
    (lambda d: _nan_wav(d / "nan.wav"), "NaN"),
    (lambda d: _zero_len_wav(d / "zero.wav"), "no audio"),
])
def test_bad_input_gives_one_line_error(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(CodecError) as e:
        audio.load(path)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_atomic_save_leaves_no_partial_file(tmp_path):
    with pytest.raises(CodecError):
        output.save(str(tmp_path / "nofolder" / "x.wav"), np.zeros(10))
    output.save(str(tmp_path / "ok.wav"), np.zeros(160, dtype=np.float32))
    assert os.listdir(tmp_path) == ["ok.wav"]


def _write(p, data):
    p.write_bytes(data)
    return str(p)


def _nan_wav(p):
    x = np.zeros(1600, dtype=np.float32)
    x[100] = np.nan
    sf.write(str(p), x, 16000, subtype="FLOAT")
    return str(p)


def _zero_len_wav(p):
    sf.write(str(p), np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")
    return str(p)


def test_mis_scaled_float_input_is_refused_and_normal_input_untouched(tmp_path):
    x = np.sin(np.arange(16000) / 10).astype(np.float32)
    sf.write(str(tmp_path / "loud.wav"), 1.5 * x, 16000, subtype="FLOAT")  # a little over full scale: kept
    assert np.allclose(audio.load(str(tmp_path / "loud.wav")), 1.5 * x, atol=1e-6)
    for peak in (1e3, 1e30):
        sf.write(str(tmp_path / "huge.wav"), peak * x, 16000, subtype="FLOAT")
        for load in (audio.load, lambda p: next(audio.iter_blocks(p))):
            with pytest.raises(CodecError, match="full scale is 1.0; the file is mis-scaled") as e:
                load(str(tmp_path / "huge.wav"))
            assert "\n" not in str(e.value)


def test_iter_blocks_refuses_what_a_file_cannot_hold(tmp_path):
    p = str(tmp_path / "x.wav")
    sf.write(p, np.zeros(32000, dtype=np.float32), 16000)
    with pytest.raises(CodecError, match="longer than the 0.0002.* h an .acdc file holds"):
        next(audio.iter_blocks(p, max_seconds=1.0))
    assert sum(map(len, audio.iter_blocks(p, max_seconds=2.0))) == 32000


def test_device_nodes_and_pipes_are_written_into_not_replaced(tmp_path):
    output.atomic_write("/dev/null", b"abc")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    output.atomic_write(fifo, b"through the pipe")
    reader.join(5)
    assert got == [b"through the pipe"] and stat.S_ISFIFO(os.stat(fifo).st_mode)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    with pytest.raises(CodecError, match="not a regular file"):
        output.atomic_write(str(tmp_path / "sock"), b"x")
    sock.close()


def test_disk_full_is_one_line(tmp_path):
    with pytest.raises(CodecError, match="No space left on device"):
        output.atomic_write("/dev/full", b"x" * 100000)
    with pytest.raises(CodecError, match="No space left on device"):
        output.save("/dev/full", np.zeros(16000, dtype=np.float32))
    try:  # soundfile's bare AssertionError (short write) and its own errors are told apart from bugs
        assert False
    except AssertionError as exc:
        assert output.write_error("x", exc) is None


def test_unwritable_folder_is_one_line(tmp_path, monkeypatch):
    def refuse(**kw):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(output.tempfile, "mkstemp", refuse)
    with pytest.raises(CodecError, match="cannot write into folder .*Permission denied"):
        output.atomic_write(str(tmp_path / "x.wav"), b"x")

    def read_only(*a):
        raise OSError(30, "Read-only file system")

    monkeypatch.undo()
    monkeypatch.setattr(output.os, "replace", read_only)
    with pytest.raises(CodecError, match="Read-only file system"):
        output.atomic_write(str(tmp_path / "x.wav"), b"x")
    assert os.listdir(tmp_path) == []


def test_modes_follow_the_umask_and_the_replaced_file(tmp_path):
    old = os.umask(0o027)
    try:
        output.atomic_write(str(tmp_path / "new.wav"), b"x")
        assert stat.S_IMODE(os.stat(tmp_path / "new.wav").st_mode) == 0o640
        os.chmod(tmp_path / "new.wav", 0o604)
        output.atomic_write(str(tmp_path / "new.wav"), b"y")
        assert stat.S_IMODE(os.stat(tmp_path / "new.wav").st_mode) == 0o604
    finally:
        os.umask(old)
    os.symlink("new.wav", tmp_path / "link.wav")  # a symlink is followed, as cp does
    output.atomic_write(str(tmp_path / "link.wav"), b"z")
    assert os.path.islink(tmp_path / "link.wav") and (tmp_path / "new.wav").read_bytes() == b"z"


def test_stale_parts_are_removed_fresh_ones_kept(tmp_path):
    stale, fresh = tmp_path / ".audiocodec-old.part", tmp_path / ".audiocodec-new.part"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(stale, (time.time() - 7200,) * 2)
    output.atomic_write(str(tmp_path / "out.wav"), b"x")
    assert sorted(os.listdir(tmp_path)) == [".audiocodec-new.part", "out.wav"]


def test_sigterm_removes_the_part(tmp_path):
    code = ("import sys, time\nfrom audiocodec import output\n"
            f"out = output.Output({str(tmp_path / 'out.wav')!r})\n"
            "out.file.write(b'x' * 1000)\nprint(out.tmp, flush=True)\ntime.sleep(30)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    part = p.stdout.readline().strip()
    assert os.path.exists(part)
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 143
    assert os.listdir(tmp_path) == []


def test_same_file(tmp_path):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    os.link(a, tmp_path / "hard.wav")
    os.symlink(a, tmp_path / "soft.wav")
    assert output.same_file(str(a), str(a)) and output.same_file(str(a), str(tmp_path / "hard.wav"))
    assert output.same_file(str(a), str(tmp_path / "soft.wav"))
    assert not output.same_file(str(a), str(b)) and not output.same_file(str(a), str(tmp_path / "none.wav"))
    assert not output.same_file("-", "-")


@pytest.mark.parametrize("error, shown", [
    (OSError(28, "No space left on device"), "audiocodec: error: cannot read or write (No space left on device)"),
    (PermissionError(13, "Permission denied", "/out/x.wav"), "audiocodec: error: /out/x.wav: Permission denied"),
])
def test_cli_turns_os_errors_into_one_line(monkeypatch, capsys, error, shown):
    from audiocodec import cli

    def fail(args):
        raise error

    monkeypatch.setattr(cli, "build_parser", lambda: _Parser(fail))
    monkeypatch.setattr(cli, "_drop_stdout", lambda: None)
    assert cli.main([]) == 1
    assert capsys.readouterr().err.strip() == shown
    monkeypatch.setenv("AUDIOCODEC_DEBUG", "1")  # the escape hatch shows the traceback
    with pytest.raises(OSError):
        cli.main([])


def test_cli_keeps_tracebacks_of_bugs(monkeypatch):
    from audiocodec import cli

    def bug(args):
        assert 1 == 2

    monkeypatch.setattr(cli, "build_parser", lambda: _Parser(bug))
    with pytest.raises(AssertionError):
        cli.main([])


class _Parser:
    def __init__(self, func):
        self.func = func

    def parse_known_args(self, argv):
        import argparse
        return argparse.Namespace(func=self.func), []
