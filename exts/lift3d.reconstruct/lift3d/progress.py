"""Terminal progress for long runs (rich), silent when asked to be."""

from __future__ import annotations

import time

from .api import CancelToken, ReconstructRequest, ReconstructResult, reconstruct


def run_with_progress(request: ReconstructRequest, quiet: bool = False,
                      cancel: CancelToken | None = None) -> ReconstructResult:
    """Run :func:`lift3d.api.reconstruct`, showing a progress bar on stderr unless ``quiet``.

    The bar appears only once the run has taken more than a second, so quick
    failures (bad input) print nothing but their error line, and only when
    stderr is a terminal: redirected to a file or a pipe it would leave
    debris (a stray blank line when it stops) around the error line.
    """
    from rich.console import Console

    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        return reconstruct(request, cancel=cancel)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("[bold]{task.description:<14}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                   TimeElapsedColumn(), console=console, transient=True)
    task = bar.add_task("starting", total=1.0)
    start = time.monotonic()
    shown = False

    def report(stage: str, fraction: float) -> None:
        nonlocal shown
        if not shown and time.monotonic() - start > 1.0:
            bar.start()
            shown = True
        bar.update(task, description=stage, completed=max(0.0, min(1.0, fraction)))

    try:
        return reconstruct(request, progress=report, cancel=cancel)
    finally:
        if shown:
            bar.stop()
