"""Progress bar, CSV log and optional TensorBoard of a training run (rank 0 only).

``<out>/log.csv`` has one row per logged step: ``step`` (global optimizer steps done),
``stage``, ``epoch``, ``batch``, ``lr`` (the rate the step used), ``loss`` and the raw loss
terms (``betas``, ``root``, ``angles`` rad², ``joints`` m, ``v2v`` m), ``grad_norm`` (before
clipping; empty when not computed), ``samples_per_s`` (global, over the logging window) and
``elapsed_s``. On resume, rows past the resumed step (written before the kill) are dropped.
TensorBoard (``run.tensorboard``) writes the same scalars to ``<out>/tb`` when the
``tensorboard`` package is installed.
"""

from __future__ import annotations

import csv
import sys
import time
import warnings
from pathlib import Path

COLUMNS = ("step", "stage", "epoch", "batch", "lr", "loss", "betas", "root", "angles",
           "joints", "v2v", "grad_norm", "samples_per_s", "elapsed_s")


def truncate_log(path: Path, step: int) -> None:
    """Keep the header and the rows with ``step`` ≤ the given step."""
    if not path.is_file():
        return
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        csv.writer(f).writerows(kept)
    tmp.replace(path)


def read_log(path: str | Path) -> list[dict[str, str]]:
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


class Monitor:
    """Logging sink of the trainer; every method is a no-op on ranks other than 0."""

    def __init__(self, out_dir: Path, enabled: bool, progress: bool, tensorboard: bool,
                 resume_step: int | None = None) -> None:
        self.enabled = enabled
        self.path = out_dir / "log.csv"
        self.start = time.perf_counter()
        self.bar = None
        self.progress = progress and enabled
        self.tb = None
        self._window = (time.perf_counter(), 0)
        if not enabled:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        if resume_step is not None:
            truncate_log(self.path, resume_step)
        elif self.path.exists():
            self.path.unlink()
        new = not self.path.exists()
        self._file = self.path.open("a", newline="")
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow(COLUMNS)
            self._file.flush()
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out_dir / "tb"))
            except ImportError:
                warnings.warn("run.tensorboard: the tensorboard package is not installed; "
                              "logging to log.csv only", stacklevel=2)

    def begin_stage(self, name: str, total: int, done: int) -> None:
        if not self.progress:
            return
        from tqdm import tqdm

        self.close_bar()
        self.bar = tqdm(total=total, initial=done, desc=name, unit="step", dynamic_ncols=True,
                        file=sys.stderr, leave=True)

    def step(self, samples: int) -> None:
        """Count one optimizer step of ``samples`` (global) samples."""
        start, count = self._window
        self._window = (start, count + samples)
        if self.bar is not None:
            self.bar.update(1)

    def log(self, step: int, stage: str, epoch: int, batch: int, lr: float,
            terms: dict[str, float], grad_norm: float | None) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        start, count = self._window
        rate = count / max(now - start, 1e-9)
        self._window = (now, 0)
        row = [step, stage, epoch, batch, repr(float(lr)), *(f"{terms.get(k, float('nan')):.6g}"
               for k in ("total", "betas", "root", "angles", "joints", "v2v")),
               "" if grad_norm is None else f"{grad_norm:.6g}", f"{rate:.1f}",
               f"{now - self.start:.1f}"]
        self._csv.writerow(row)
        self._file.flush()
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{terms['total']:.4f}", lr=f"{lr:.2e}",
                                 sps=f"{rate:.0f}")
        if self.tb is not None:
            for key, value in terms.items():
                self.tb.add_scalar(f"loss/{key}", value, step)
            self.tb.add_scalar("lr", lr, step)
            self.tb.add_scalar("samples_per_s", rate, step)

    def scalar(self, key: str, value: float, step: int) -> None:
        if self.tb is not None:
            self.tb.add_scalar(key, value, step)

    def write(self, line: str) -> None:
        """A message line (through the bar, so it does not break it)."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def close(self) -> None:
        self.close_bar()
        if self.enabled:
            self._file.close()
        if self.tb is not None:
            self.tb.close()
