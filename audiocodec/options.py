"""Command-line options shared by every subcommand that writes a file (the CLI modules import this)."""
from __future__ import annotations


def add_output_options(p) -> None:
    """-f/--force, -q/--quiet and --model, shared by every subcommand that writes a file."""
    p.add_argument("-f", "--force", action="store_true", help="overwrite the output file if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--model", help="weights file (default: the shipped model)")
