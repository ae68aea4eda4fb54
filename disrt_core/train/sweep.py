"""The paper's Table 1 protocol: synthetic only, then + a fraction of the real data.

Input: a two-stage config (first stage = synthetic data, last stage = the real data, whose
first source is the "real" source) and ``eval.data`` = the real test set. For each seed:

* the synthetic stage is trained once (``<out>/seed<k>/synth``) and evaluated: the
  ``Sim`` column;
* for each fraction f (0.11, 0.24, 0.37, 0.49, 1.0 by default: SLP subjects in id order,
  :func:`disrt_core.data.splits.fraction_subjects`; for a shard source, the first
  ``round(f·n)`` shards) and each method, one run and its evaluation on the test set.

Methods (``name[:schedule]``, schedule ∈ linear, cosine, exponential, constant/none):

* ``finetune`` (default ``finetune:linear``): the paper's two stages; stage 2 starts from
  the synthetic stage's end state (weights and AdamW moments, SPEC §8.5) with the real
  stage's settings (epochs, frozen modules) and the given schedule;
* ``target_only``: the real stage alone, from random weights (nothing frozen);
* ``joint``: one stage on the synthetic data mixed with the real fraction (every sample of
  both once per epoch; the synthetic stage's epochs and schedule).

The config's own ``init.checkpoint`` (e.g. weights pre-trained on synthetic data) is where
the synthetic stage and ``joint`` start; ``finetune`` starts from the synthetic stage's end
and ``target_only`` from random weights (:func:`init_for`).

The real source is pluggable through the config: any source type with a ``fraction``
(``slp`` by subjects, ``shards`` by shards, e.g. a generator "target" domain). Runs that
finished are not redone (their ``eval-test.json`` is reused) and interrupted ones resume,
so the sweep itself can be restarted. Output: ``<out>/table1.json`` and ``table1.md``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from disrt_core.train import distributed
from disrt_core.train import state as st
from disrt_core.train.config import ConfigError, TrainConfig, validate
from disrt_core.train.evaluation import EvalSettings, evaluate_checkpoint

PAPER_FRACTIONS = (0.11, 0.24, 0.37, 0.49, 1.0)
METHODS = ("finetune", "target_only", "joint")


def parse_method(text: str) -> tuple[str, str]:
    """``finetune:cosine`` -> (``finetune``, ``cosine``); default schedules: finetune and
    target_only linear, joint constant."""
    name, _, schedule = text.partition(":")
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; choose from {METHODS} (optionally "
                          "with :linear, :cosine, :exponential or :none)")
    schedule = schedule or ("constant" if name == "joint" else "linear")
    if schedule not in ("linear", "cosine", "exponential", "constant", "none"):
        raise ConfigError(f"method {text!r}: unknown schedule {schedule!r}")
    return name, schedule


def column(fraction: float) -> str:
    return "Sim" if fraction == 0 else f"+{round(100 * fraction)}%"


def row_name(name: str, schedule: str) -> str:
    """The table row of a method: ``finetune:linear``, ``target_only:cosine``, ``joint``."""
    return f"{name}:{schedule}" if name != "joint" else "joint"


def run_dir(out_dir: str | Path, seed: int, row: str, fraction: float) -> Path:
    """Where the sweep keeps one run: ``<out>/seed<k>/synth`` for the synthetic stage (the
    ``Sim`` column), else ``<out>/seed<k>/<row with - for :>/f<percent>``."""
    base = Path(out_dir) / f"seed{seed}"
    if fraction == 0:
        return base / "synth"
    return base / row.replace(":", "-") / f"f{round(100 * fraction):03d}"


def _summary(run: Path) -> dict | None:
    path = run / "eval-test.json"
    return json.loads(path.read_text())["results"][0]["summary"] if path.is_file() else None


def _record(cells: dict[str, dict[str, list]], row: str, fraction: float, summary: dict
            ) -> None:
    """Add one run's MPJPE / PVE (all covers) to its cell of the table."""
    cells.setdefault(row, {}).setdefault(column(fraction), []).append(
        (summary["mpjpe_mm"]["all"], summary["pve_mm"]["all"]))


def collect(out_dir: str | Path, runs: Sequence[tuple[str, int, float]],
            fractions: Sequence[float], seeds: Sequence[int]) -> dict[str, Any]:
    """The table of the ``runs`` (method, seed, fraction) that finished under ``out_dir``
    (their ``eval-test.json``), training nothing: for a sweep split over several processes,
    each running :func:`run_sweep` on part of the seeds, methods and fractions
    (``training/sim2real.py``). ``fractions`` are the table's columns, ``seeds`` its
    footnote; runs not found are left out of their cell and listed under ``missing``."""
    cells: dict[str, dict[str, list]] = {}
    missing = []
    for method, seed, fraction in runs:
        name, schedule = parse_method(method)
        if fraction == 0 and name == "target_only":
            continue
        row = row_name(name, schedule)
        run = run_dir(out_dir, seed, row, fraction)
        summary = _summary(run)
        if summary is None:
            missing.append(str(run))
            continue
        _record(cells, row, fraction, summary)
    table = _table(cells, [column(f) for f in fractions], seeds)
    table["missing"] = missing
    return table


def init_for(name: str, base: TrainConfig, synth_state: Path | None) -> str | None:
    """Where a run of method ``name`` starts (module docstring); ``synth`` is the synthetic
    stage itself."""
    if name == "finetune":
        return str(synth_state)
    if name == "target_only":
        return None
    return base.init.checkpoint  # synth, joint


def _run_config(base: TrainConfig, out: Path, seed: int, stages: list, init: str | None
                ) -> TrainConfig:
    config = copy.deepcopy(base)
    config.seed, config.stages = seed, stages
    config.run.out_dir = str(out)
    config.init.checkpoint, config.init.optimizer = init, init is not None
    config.eval.at_stage_end, config.eval.every_epochs = False, 0
    return validate(config)


def _train(config: TrainConfig, log: Callable[[str], None]) -> Path:
    """Train (or resume, or skip when done) one run; returns its model checkpoint."""
    from disrt_core.train.trainer import Trainer

    out = Path(config.run.out_dir)
    model = out / "model.safetensors"
    last = st.latest_state(out)
    if last is not None and (out / "summary.json").is_file() and model.is_file():
        return model
    log(f"[sweep] training {out}")
    trainer = Trainer(config, resume=last is not None)
    try:
        trainer.fit()
    finally:
        trainer.close()
    return model


def run_sweep(config: TrainConfig, out_dir: str | Path, *,
              fractions: Sequence[float] = (0.0, *PAPER_FRACTIONS),
              methods: Sequence[str] = ("finetune",), seeds: Sequence[int] = (0,),
              settings: EvalSettings | None = None, device: str = "cpu",
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train and evaluate the protocol (module docstring); returns the table as a dict."""
    if len(config.stages) < 2:
        raise ConfigError("--sweep-fractions needs a two-stage config: the synthetic stage "
                          "first, the real stage last (e.g. config/train_finetune.yaml)")
    if config.eval.data is None:
        raise ConfigError("--sweep-fractions needs eval.data: the real test set (SLP: "
                          "type slp, split real_81_102)")
    settings = settings or EvalSettings(measurements=False)
    parsed = [parse_method(m) for m in methods]
    synth = config.stages[0]
    if any(f < 0 or f > 1 for f in fractions):
        raise ConfigError(f"fractions must be in [0, 1], got {list(fractions)}")
    if any(name == "joint" for name, _ in parsed) and any(
            s.type == "generator" for s in synth.data):
        raise ConfigError("method joint mixes sources: the synthetic stage must read shards "
                          "(write them with disrt-generate), not a generator pool")
    info = distributed.from_env()
    owns_group = info.enabled and not torch.distributed.is_initialized()
    if owns_group:  # one process group for all runs (the trainers then leave it alone)
        from disrt_core.train.trainer import pick_device

        distributed.init(info, pick_device(config.run.device, info),
                         config.run.dist_timeout_min)
    try:
        return _sweep(config, Path(out_dir), fractions, parsed, seeds, settings, device, log,
                      info)
    finally:
        if owns_group:
            distributed.shutdown()


def _sweep(config: TrainConfig, out_dir: Path, fractions, parsed, seeds, settings, device,
           log, info) -> dict[str, Any]:
    synth, real = config.stages[0], config.stages[-1]
    cells: dict[str, dict[str, list]] = {}
    body: list = []

    def evaluate(model: Path, run: Path) -> dict:
        done = _summary(run)
        if done is not None:
            return done
        path, result = run / "eval-test.json", None
        if info.is_main:
            if not body:
                from disrt_core.train.trainer import load_body

                body.append(load_body(config.body, torch.device(device)))
            result = evaluate_checkpoint(model, config.eval.data, settings, device, body[0])
            path.write_text(json.dumps(result, indent=1))
            result = result["results"][0]["summary"]
        distributed.barrier()
        return distributed.broadcast_object(result, info)

    for seed in seeds:
        synth_dir = run_dir(out_dir, seed, "", 0.0)
        synth_run = _run_config(config, synth_dir, seed, [copy.deepcopy(synth)],
                                init_for("synth", config, None))
        needs_synth = any(name != "target_only" for name, _ in parsed)
        synth_model = synth_state = None
        if needs_synth:
            synth_model = _train(synth_run, log)
            synth_state = st.stage_path(synth_dir, synth.name)
            synth_summary = evaluate(synth_model, synth_dir) if 0 in fractions else None
        for name, schedule in parsed:
            row = row_name(name, schedule)
            if 0 in fractions and name != "target_only":
                _record(cells, row, 0.0, synth_summary)
            for fraction in (f for f in fractions if f > 0):
                run = run_dir(out_dir, seed, row, fraction)
                stage = copy.deepcopy(real)
                stage.data[0].fraction = fraction
                stage.data[0].subjects = None
                init = init_for(name, config, synth_state)
                if name == "finetune":
                    stage.schedule.kind = schedule
                elif name == "target_only":
                    stage.schedule.kind = schedule
                    stage.freeze = []
                else:
                    stage = copy.deepcopy(synth)
                    stage.name = "joint"
                    extra = copy.deepcopy(real.data[0])
                    extra.fraction, extra.subjects, extra.name = fraction, None, "real"
                    stage.data = [*stage.data, extra]
                    stage.schedule.kind = schedule
                model = _train(_run_config(config, run, seed, [stage], init), log)
                _record(cells, row, fraction, evaluate(model, run))
    table = _table(cells, [column(f) for f in fractions], seeds)
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "table1.json").write_text(json.dumps(table, indent=1))
        (out_dir / "table1.md").write_text(table["markdown"])
    return table


def _table(cells: dict[str, dict[str, list]], columns: list[str], seeds) -> dict[str, Any]:
    rows = {}
    for row, by_col in cells.items():
        rows[row] = {}
        for col in columns:
            values = np.array(by_col.get(col, []), dtype=float).reshape(-1, 2)
            if len(values):
                rows[row][col] = {"mpjpe_mm": float(values[:, 0].mean()),
                                  "pve_mm": float(values[:, 1].mean()),
                                  "mpjpe_std": float(values[:, 0].std()),
                                  "pve_std": float(values[:, 1].std()), "seeds": len(values)}
    footnote = (f"MPJPE / PVE in mm on the test set (all covers), mean over seeds "
                f"{list(seeds)}; Sim = synthetic stage only, +N% = with that fraction of the "
                "real training subjects (SPEC §5, Table 1).")
    return {"columns": columns, "rows": rows, "markdown": markdown(rows, columns, footnote)}


def markdown(rows: dict[str, dict[str, dict]], columns: list[str], footnote: str) -> str:
    """The table as Markdown: MPJPE / PVE (mm) per method and column, ± the std over seeds
    where a cell has more than one, then ``footnote``."""
    lines = ["| Method | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for row, by_col in rows.items():
        cells_md = []
        for col in columns:
            c = by_col.get(col)
            if c is None:
                cells_md.append("–")
            elif c["seeds"] > 1:
                cells_md.append(f"{c['mpjpe_mm']:.2f}±{c['mpjpe_std']:.2f} / "
                                f"{c['pve_mm']:.2f}±{c['pve_std']:.2f}")
            else:
                cells_md.append(f"{c['mpjpe_mm']:.2f} / {c['pve_mm']:.2f}")
        lines.append(f"| {row} | " + " | ".join(cells_md) + " |")
    return "\n".join([*lines, "", footnote]) + "\n"
