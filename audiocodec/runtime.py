"""How many CPU threads the model may use.

Torch's default, one thread per core, oversubscribes a machine that is doing anything else: on a busy
2-core host a 10-minute file took 147 s to compress with the default and 18.7 s with one thread, for the
same bytes. So every command runs the model on a deliberate number of threads: one unless told otherwise
(``--threads``), and always one for live streams, whose frames are too small to split."""
from __future__ import annotations

DEFAULT_THREADS = 1


def use_threads(n: int | None = None) -> int:
    """Run torch's operators on ``n`` threads (default ``DEFAULT_THREADS``), inter-op work on one. Returns n."""
    import torch

    n = DEFAULT_THREADS if n is None else int(n)
    if n < 1:
        raise ValueError("threads must be at least 1")
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only settable before the first parallel work; it is 1 thread's worth either way
        pass
    return n
