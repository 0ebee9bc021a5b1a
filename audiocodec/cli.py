"""The ``audiocodec`` command line. Thin: parse arguments, call the module that does the work,
turn a CodecError into one line on stderr and a non-zero exit."""
from __future__ import annotations

import argparse
import sys

from .errors import CodecError

EPILOG = """examples:
  audiocodec compress speech.wav speech.acdc --bitrate 6
  audiocodec decompress speech.acdc speech.out.wav
  audiocodec info speech.acdc
  cat speech.wav | audiocodec compress - - | audiocodec decompress - out.wav
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="audiocodec", description="A small neural speech codec (16 kHz, 1.5-12 kbps).",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    from . import commands  # compress, decompress, info
    from .evaluation import commands as evaluation_commands  # evaluate, encode-latents
    from .transport import commands as transport_commands  # send, receive, simulate

    commands.add_commands(sub)
    transport_commands.add_commands(sub)
    evaluation_commands.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CodecError as exc:
        print(f"audiocodec: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("audiocodec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
