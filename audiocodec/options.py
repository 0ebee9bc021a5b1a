"""Command-line options shared by the subcommands (the CLI modules import this)."""
from __future__ import annotations

import argparse


def add_output_options(p) -> None:
    """-f/--force, -q/--quiet and --model, shared by every subcommand that writes a file."""
    p.add_argument("-f", "--force", action="store_true", help="overwrite the output file if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors (no progress bar either)")
    p.add_argument("--model", help="weights file (default: the shipped model)")


def threads(text: str) -> int:
    """--threads: a whole number of at least 1."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return n


def add_threads_option(p, top: bool = False) -> None:
    """--threads N: CPU threads for the model (the top-level parser sets the default, 1; a subcommand may repeat
    the option after its name)."""
    p.add_argument("--threads", type=threads, metavar="N", default=1 if top else argparse.SUPPRESS,
                   help="CPU threads for the model (default 1; live streams always use 1)")


MAX_SEARCH = 1000  # --search: more steps than this only waste time


def search_steps(text: str) -> int:
    """--search: a whole number of steps from 0 to MAX_SEARCH."""
    try:
        steps = int(text)
    except ValueError:
        steps = -1
    if not 0 <= steps <= MAX_SEARCH:
        raise argparse.ArgumentTypeError(f"--search takes a whole number of steps from 0 to {MAX_SEARCH}, not {text!r}")
    return steps
