"""Faults injected into Ray workers by tests, through runtime_env's worker_process_setup_hook
(a string: the hook runs in each worker process as it starts)."""

from __future__ import annotations


def oom_on_seed_1() -> None:
    """Every fine-tuning run of seed 1 fails as a CUDA out-of-memory would, every time."""
    import capsafe.training as training

    real = training.finetune_run

    def failing(cfg, run, *args, **kwargs):
        if run.seed == 1:
            raise MemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        return real(cfg, run, *args, **kwargs)

    training.finetune_run = failing


def slow_generation() -> None:
    """Each generation batch on a worker takes a second longer (a window to kill it in)."""
    import time

    import capsafe.cluster.workers as workers

    real = workers.generate_batch

    def slow(*args, **kwargs):
        time.sleep(1.0)
        return real(*args, **kwargs)

    workers.generate_batch = slow
