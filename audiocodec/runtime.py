"""How the model uses the CPU: how many threads, and how its working memory is allocated.

Torch's default, one thread per core, oversubscribes a machine that is doing anything else: on a busy
2-core host a 10-minute file took 147 s to compress with the default and 18.7 s with one thread, for the
same bytes. So every command runs the model on a deliberate number of threads: one unless told otherwise
(``--threads``), and always one for live streams, whose frames are too small to split
(``scripts/bench_threads.py`` measures both on a loaded machine). numpy's BLAS, which runs the entropy coder's
context model (``bitstream/context.py``, small matrix products), gets the same number: left to its default of
one thread per core it doubled the CPU time of decoding a 12 kbps file on 2 cores without making it faster
(``scripts/speed.py``, 2026-12-05: compress + decompress 0.103 CPU seconds per second of audio, 0.074 on one
BLAS thread; wall time the same).

Memory: glibc hands blocks over 128 kB to the kernel on ``free`` and maps fresh ones for the next call,
and each of their 4 kB pages then faults on first touch. The encoder's 16 kHz layers make a 10 MB tensor
per 10 s of audio (the streaming encoder takes a file's audio in one push, so 60 MB for a minute): measured
by CPU time on one thread, the faults cost 14 % of an offline encode + decode of 10 s (17,000 of them), and
a third of compress + decompress of a 60 s file (400,000). ``keep_freed_memory`` makes the allocator take
every block from its heap and keep up to 512 MB of it free for reuse: the same numbers, faster.
"""
from __future__ import annotations

import ctypes
import ctypes.util

DEFAULT_THREADS = 1

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
_TRIM_THRESHOLD = 512 << 20  # free heap kept for reuse before any is handed back to the kernel


def use_threads(n: int | None = None) -> int:
    """Run torch's operators and numpy's BLAS on ``n`` threads (default ``DEFAULT_THREADS``), inter-op work on
    one, and keep freed memory for reuse (``keep_freed_memory``). Returns n."""
    import torch

    n = DEFAULT_THREADS if n is None else int(n)
    if n < 1:
        raise ValueError("threads must be at least 1")
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only settable before the first parallel work; it is 1 thread's worth either way
        pass
    from threadpoolctl import threadpool_limits

    threadpool_limits(n, user_api="blas")  # numpy's BLAS too (the context model); kept until the process ends
    keep_freed_memory()
    return n


def keep_freed_memory() -> bool:
    """Make glibc's malloc serve every block from its heap (no separate mappings, which go back to the kernel
    on ``free``) and keep up to 512 MB of freed heap for reuse, so the model's tensors stop page-faulting.
    (glibc still maps a block that a thread's heap cannot hold.) Outputs are unchanged. Returns False where
    the C library has no ``mallopt`` (not glibc: nothing to do)."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
