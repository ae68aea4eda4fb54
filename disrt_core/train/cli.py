"""Command lines of ``training/train.py`` and ``training/evaluate.py``.

Training::

    python training/train.py --config config/train_synth.yaml [dotted.key=value ...]
    python training/train.py --config config/train_synth.yaml --resume        # continue
    torchrun --nproc_per_node 2 training/train.py --config ...                # DDP
    python training/train.py --smoke                                          # ~1 min CPU

Evaluation (JSON + Markdown table in the paper's form)::

    python training/evaluate.py runs/x/model.safetensors --slp /data/BP \\
        --steps 1,2,5,10 --hypotheses 1,8 --out runs/x/eval
    python training/evaluate.py ckpt.safetensors --data type=shards,path=data/heldout
    python training/evaluate.py ckpt.safetensors --generate 256 --data-seed 7
    python training/evaluate.py --sweep-fractions --config config/train_finetune.yaml \\
        --methods finetune:linear,target_only --seeds 0,1 --out runs/table1

Errors in the config or the data (unknown key, missing path, a body model that does not
fit the labels, an empty dataset) are reported in one line before anything is trained.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import yaml

from disrt_core.data.source import DataError
from disrt_core.train.config import ConfigError, DataSpec, from_dict, load_config, smoke_config

USER_ERRORS = (ConfigError, DataError, FileNotFoundError)


def _fail(prog: str, exc: Exception) -> int:
    print(f"{prog}: error: {exc}", file=sys.stderr)
    return 2


def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train.py", description="Train the DiSRT-In-Bed denoiser "
                                "(stages, checkpoints, resume, DDP under torchrun).")
    p.add_argument("--config", type=Path, help="YAML config (config/train_*.yaml)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. stages.synth.epochs=3 optim.lr=2.0e-4")
    p.add_argument("--out", help="output folder (= run.out_dir=...)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the newest state in the output folder")
    p.add_argument("--smoke", action="store_true",
                   help="a tiny complete two-stage run on the CPU (generated data, ~1 min)")
    p.add_argument("--stages", help="run only these stages (comma-separated names), e.g. "
                   "finetune with init.checkpoint=<a stage-1 run>/state/stage-synth.pt")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config and exit")
    return p


def train_main(argv: list[str] | None = None) -> int:
    args = train_parser().parse_args(argv)
    if not args.smoke and args.config is None:
        train_parser().error("give --config FILE (or --smoke)")
    overrides = list(args.overrides) + ([f"run.out_dir={args.out}"] if args.out else [])
    try:
        if args.smoke:
            out = args.out or tempfile.mkdtemp(prefix="disrt-smoke-")
            base = smoke_config(out).to_dict()
            config = load_config(None, overrides, base=base)
        else:
            config = load_config(args.config, overrides)
        if args.stages:
            names = args.stages.split(",")
            unknown = [n for n in names if n not in [s.name for s in config.stages]]
            if unknown:
                raise ConfigError(f"--stages: no stage named {unknown}; stages: "
                                  f"{[s.name for s in config.stages]}")
            config.stages = [s for s in config.stages if s.name in names]
    except USER_ERRORS as exc:
        return _fail("train.py", exc)
    if args.print_config:
        print(config.to_yaml())
        return 0
    from disrt_core.train.trainer import Trainer

    try:
        trainer = Trainer(config, resume=args.resume)
    except USER_ERRORS as exc:
        return _fail("train.py", exc)
    try:
        summary = trainer.fit()
    finally:
        trainer.close()
    if trainer.info.is_main:
        print(f"[train] done: {trainer.position.step} steps, {summary['samples']} samples, "
              f"outputs in {config.run.out_dir}", file=sys.stderr)
    return 0


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") \
            from None


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") \
            from None


def data_spec(text: str) -> DataSpec:
    """``type=slp,path=/data,split=real_81_102`` -> DataSpec (values parsed as YAML; lists
    with ``;``: ``covers=cover1;cover2``)."""
    raw = {}
    for item in filter(None, text.split(",")):
        if "=" not in item:
            raise ConfigError(f"--data {text!r}: expected key=value pairs separated by commas")
        key, value = item.split("=", 1)
        raw[key.strip()] = ([yaml.safe_load(v) for v in value.split(";")] if ";" in value
                            else yaml.safe_load(value))
    return from_dict(DataSpec, raw, where="--data")


def evaluate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evaluate.py", description="Evaluate checkpoints "
                                "(MPJPE / PVE per cover, body-measurement errors) or run the "
                                "Table 1 fraction sweep.")
    p.add_argument("checkpoints", nargs="*", type=Path, help="model .safetensors files")
    src = p.add_argument_group("data (one of)")
    src.add_argument("--data", type=str, help="a data source: type=...,path=...[,split=...]")
    src.add_argument("--slp", help="SLP <data> root: the test split real_81_102")
    src.add_argument("--bodypressure", help="BodyPressureSD <data> root")
    src.add_argument("--shards", help="a generator shard folder")
    src.add_argument("--generate", type=int, metavar="N",
                     help="N samples generated on the fly (--data-seed, --sensor)")
    src.add_argument("--data-seed", type=int, default=1000)
    src.add_argument("--sensor", default="kinect2")
    p.add_argument("--steps", type=_ints, default=[5], help="DDIM steps, e.g. 1,2,5,10")
    p.add_argument("--hypotheses", type=_ints, default=[1], help="hypotheses, e.g. 1,8")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-samples", type=int)
    p.add_argument("--no-measurements", action="store_true",
                   help="skip the body-measurement errors (faster)")
    p.add_argument("--per-sample", action="store_true", help="per-sample values in the JSON")
    p.add_argument("--device", default="auto")
    p.add_argument("--smpl-dir", help="folder of the SMPL .pkl files")
    p.add_argument("--out", type=Path, help="folder for eval.json and eval.md (else stdout)")
    sweep = p.add_argument_group("Table 1 sweep")
    sweep.add_argument("--sweep-fractions", action="store_true",
                       help="train and evaluate synthetic-only and + real fractions")
    sweep.add_argument("--config", type=Path, help="two-stage training config of the sweep")
    sweep.add_argument("--set", nargs="*", default=[], metavar="key=value",
                       help="config overrides for the sweep")
    sweep.add_argument("--fractions", type=_floats, default=[0.0, 0.11, 0.24, 0.37, 0.49, 1.0])
    sweep.add_argument("--methods", default="finetune:linear",
                       help="comma-separated: finetune[:schedule], target_only[:schedule], "
                       "joint")
    sweep.add_argument("--seeds", type=_ints, default=[0])
    return p


def _eval_spec(args) -> DataSpec | None:
    given = [x for x in (args.data, args.slp, args.bodypressure, args.shards, args.generate)
             if x is not None]
    if len(given) > 1:
        raise ConfigError("give one data source (--data, --slp, --bodypressure, --shards or "
                          "--generate)")
    if args.data:
        return data_spec(args.data)
    if args.slp:
        return DataSpec(type="slp", path=args.slp, split="real_81_102", name="slp")
    if args.bodypressure:
        return DataSpec(type="bodypressure", path=args.bodypressure, name="bodypressure")
    if args.shards:
        return DataSpec(type="shards", path=args.shards, name="shards")
    if args.generate:
        return DataSpec(type="generator", samples=args.generate, seed=args.data_seed,
                        sim={"sensor": args.sensor}, name="generator")
    return None


def evaluate_main(argv: list[str] | None = None) -> int:
    args = evaluate_parser().parse_args(argv)
    import torch

    from disrt_core.train.evaluation import EvalSettings, evaluate_checkpoint, markdown_table

    device = args.device if args.device != "auto" else (
        "cuda" if torch.cuda.is_available() else "cpu")
    grid = [(s, h) for s in args.steps for h in args.hypotheses]
    settings = EvalSettings(steps=grid[0][0], hypotheses=grid[0][1], seed=args.seed,
                            batch_size=args.batch_size, max_samples=args.max_samples,
                            measurements=not args.no_measurements, grid=grid)
    try:
        spec = _eval_spec(args)
        if args.sweep_fractions:
            return _sweep(args, spec, settings, device)
        if not args.checkpoints or spec is None:
            raise ConfigError("give checkpoint files and a data source (e.g. "
                              "model.safetensors --slp /data/BP)")
        for path in args.checkpoints:
            if not path.is_file():
                raise FileNotFoundError(f"checkpoint not found: {path}")
        results, rows = [], []
        for path in args.checkpoints:
            result = evaluate_checkpoint(path, spec, settings, device, smpl_dir=args.smpl_dir,
                                         per_sample=args.per_sample)
            results.append(result)
            rows += [{"label": path.name, **r} for r in result["results"]]
    except USER_ERRORS as exc:
        return _fail("evaluate.py", exc)
    title = f"{spec.name or spec.type}: {spec.path or f'generated, seed {spec.seed}'}"
    table = markdown_table(rows, title)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "eval.json").write_text(json.dumps(results, indent=1))
        (args.out / "eval.md").write_text(table)
        print(f"[evaluate] wrote {args.out / 'eval.json'} and eval.md", file=sys.stderr)
    print(table)
    return 0


def _sweep(args, spec: DataSpec | None, settings, device: str) -> int:
    from disrt_core.train.sweep import run_sweep

    if args.config is None:
        raise ConfigError("--sweep-fractions needs --config (a two-stage config)")
    overrides = list(args.set)
    config = load_config(args.config, overrides)
    if spec is not None:
        config.eval.data = spec
    settings.grid = settings.grid[:1]
    out = args.out or Path(config.run.out_dir) / "table1"
    table = run_sweep(config, out, fractions=args.fractions, methods=args.methods.split(","),
                      seeds=args.seeds, settings=settings, device=device,
                      log=lambda m: print(m, file=sys.stderr))
    print(table["markdown"])
    return 0
