"""The ``audiocodec`` command line. Thin: parse arguments, call the module that does the work,
turn a CodecError, an OS error (disk full, permission denied, a closed pipe) or a failed soundfile write into
one line on stderr and exit 1. ``AUDIOCODEC_DEBUG=1`` shows the traceback of OS and soundfile errors."""
from __future__ import annotations

import argparse
import os
import sys

from . import __version__
from .errors import CodecError
from .options import add_threads_option

EPILOG = """examples:
  audiocodec compress speech.wav --bitrate 6        # writes speech.acdc
  audiocodec decompress speech.acdc out.wav
  audiocodec info speech.acdc
  cat speech.wav | audiocodec compress - - | audiocodec decompress - out.wav
  audiocodec --threads 4 compress recordings/ packed/

`audiocodec COMMAND --help` shows each command's options and examples.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="audiocodec", description="A small neural speech codec (16 kHz, 1.5-12 kbps).",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"audiocodec {__version__}")
    add_threads_option(p, top=True)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    from . import commands  # compress, decompress, info
    from .evaluation import commands as evaluation_commands  # evaluate, encode-latents
    from .transport import commands as transport_commands  # send, receive, simulate

    commands.add_commands(sub)
    transport_commands.add_commands(sub)
    evaluation_commands.add_commands(sub)
    p.commands = sub.choices  # name -> the subcommand's parser (main reports a stray option with its usage)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # reported with the subcommand's usage, not the top-level one
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.func(args) or 0)
    except CodecError as exc:
        print(f"audiocodec: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("audiocodec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (| head): nothing to say
        _drop_stdout()
        return 1
    except (OSError, AssertionError, RuntimeError) as exc:
        message = _system_error(exc)
        if message is None or os.environ.get("AUDIOCODEC_DEBUG"):
            raise
        _drop_stdout()
        print(f"audiocodec: error: {message}", file=sys.stderr)
        return 1


def _system_error(exc: BaseException) -> str | None:
    """One line for an OS error or a failed soundfile write; None for anything else (a bug: traceback)."""
    from .output import soundfile_failed

    if isinstance(exc, OSError):
        what = exc.strerror or str(exc)
        return f"{exc.filename}: {what}" if exc.filename else f"cannot read or write ({what})"
    if soundfile_failed(exc):
        return "writing audio failed (disk full or I/O error)"
    return None


def _drop_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush of unwritable output raises nothing more."""
    try:
        sys.stdout.flush()
    except OSError:
        pass
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
