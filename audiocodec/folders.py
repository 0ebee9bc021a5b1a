"""Folders in, folders out: run a one-file command over every matching file of a folder tree, with a progress
bar and a summary line; a bad file is reported and the rest go on. No codec logic."""
from __future__ import annotations

import os
import sys
from typing import Callable

from .errors import CodecError


def pairs(src_dir: str, dst_dir: str, suffixes: tuple[str, ...], new_suffix: str) -> list[tuple[str, str]]:
    """(input, output) paths: each file under ``src_dir`` ending in one of ``suffixes`` (hidden ones skipped),
    mirrored under ``dst_dir`` with ``new_suffix``; sorted."""
    if os.path.exists(dst_dir) and not os.path.isdir(dst_dir):
        raise CodecError(f"{dst_dir}: not a folder (a folder of inputs needs an output folder)")
    found = []
    for root, dirs, files in os.walk(src_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name.lower().endswith(suffixes):
                rel = os.path.relpath(os.path.join(root, name), src_dir)
                found.append((os.path.join(root, name), os.path.join(dst_dir, os.path.splitext(rel)[0] + new_suffix)))
    if not found:
        raise CodecError(f"{src_dir}: no {' or '.join(suffixes)} files in this folder")
    return found


def run(jobs: list[tuple[str, str]], one: Callable[[str, str], tuple[float, int]], desc: str, quiet: bool) -> int:
    """Call ``one(src, dst) -> (seconds of audio, bytes written)`` for each job; a CodecError or OSError is
    printed and counted. Prints the summary (unless ``quiet``); returns 1 if any file failed, else 0."""
    from tqdm import tqdm

    seconds, size, failed = 0.0, 0, 0
    bar = tqdm(jobs, desc=desc, unit="file", disable=True if quiet else None, leave=False, file=sys.stderr)
    for src, dst in bar:
        try:
            os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
            s, n = one(src, dst)
            seconds, size = seconds + s, size + n
        except (CodecError, OSError) as exc:
            failed += 1
            what = exc if isinstance(exc, CodecError) else f"{exc.filename or src}: {exc.strerror or exc}"
            bar.write(f"audiocodec: error: {src}: {what}" if not str(what).startswith(src) else
                      f"audiocodec: error: {what}", file=sys.stderr)
    bar.close()
    if not quiet:
        print(f"{len(jobs) - failed} of {len(jobs)} files, {seconds:.1f} s of audio, {size} bytes written"
              + (f", {failed} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0
