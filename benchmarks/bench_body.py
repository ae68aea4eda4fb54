"""Body-model forward time, batch 1 and 64: SMPL (fixture arrays, same size as SMPL) and Anny.

    python benchmarks/bench_body.py [--device cpu|cuda] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Result, Row, command_line, machine_info, save, time_call

from disrt_core.body import load_body_model
from disrt_core.body.fixtures import write_fake_smpl_pickle


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    cuda = args.device.startswith("cuda")

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_fake_smpl_pickle(Path(tmp) / "SMPL_NEUTRAL.pkl")
        models = {
            "smpl (fixture, 6890 v)": load_body_model("smpl", tmp, device=args.device),
            "anny (13718 v)": load_body_model("anny", device=args.device),
        }
    result = Result("body_forward", machine_info(), command_line())
    for name, model in models.items():
        for batch in (1, 64):
            params = model.zero_params(batch)
            params[:, model.param_layout.body_pose] = 0.2 * torch.randn(batch, 69)
            params = params.to(args.device)
            with torch.no_grad():
                times = time_call(lambda m=model, p=params: m(p), repeat=args.repeat, cuda=cuda)
            ms = statistics.median(times) * 1e3
            metric = f"{name} forward, batch {batch}, {args.device}"
            result.rows.append(Row(metric, round(ms, 2), "ms"))
            print(f"{name:24s} batch {batch:3d}: {ms:8.2f} ms (median of {args.repeat})")
    print("wrote", save(result))


if __name__ == "__main__":
    main()
