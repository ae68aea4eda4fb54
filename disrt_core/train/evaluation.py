"""Evaluation in the paper's form (SPEC §6, Table 2): MPJPE and PVE in mm per cover
condition (uncover, cover1, cover2, all), body-measurement errors in cm, per inference
setting (DDIM steps × hypotheses).

Per sample (then the mean over samples of a group):

* MPJPE = mean over the 24 joints of ‖J_gt − J_pred‖ (label frame, no alignment); J_gt =
  the sample's ``joints`` (SLP: label[0:72] / 1000), J_pred = the Estimator's joints (the
  mean over hypotheses when K > 1);
* PVE = mean over vertices of ‖V_gt − V_pred‖, no alignment; V_gt = the sample's
  ``vertices_gt`` (SLP / BodyPressureSD GT files) when present, else the body model on the
  GT parameters; V_pred = the mesh of the (mean) predicted parameters;
* height, chest, waist, hips errors = |pred − gt| of :func:`disrt_core.measurements.
  body_measurements` on the zero-pose meshes of the predicted and GT shapes (GT gender for
  both with SMPL).

The data are read once; every setting of the grid is run on each batch. Sampling is seeded
(``seed``), so a result is repeatable. Results are dicts (JSON); :func:`markdown_table`
renders them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from disrt_core.data.source import COVERS
from disrt_core.decoder import DecoderConfig, MeshDecoder
from disrt_core.measurements import MEASUREMENTS, body_measurements, landmarks_for
from disrt_core.metrics import measurement_errors_cm, mpjpe_mm, pve_mm
from disrt_core.posture import POSTURES, posture_from_axis_angle
from disrt_core.train.config import DataSpec


@dataclass
class EvalSettings:
    """Inference and data settings of one evaluation; ``grid`` lists (steps, hypotheses)
    pairs to run (default: the single pair ``(steps, hypotheses)``)."""

    steps: int = 5
    hypotheses: int = 1
    eta: float = 0.0
    seed: int = 0
    batch_size: int = 64
    max_samples: int | None = None
    measurements: bool = True
    num_workers: int = 0
    precision: str = "auto"
    channels_last: bool = True
    grid: list[tuple[int, int]] = field(default_factory=list)

    def pairs(self) -> list[tuple[int, int]]:
        return list(self.grid) or [(self.steps, self.hypotheses)]


def _gt_vertices(batch: dict, decoder: MeshDecoder, x0: torch.Tensor, gender) -> torch.Tensor:
    if "vertices_gt" in batch:
        return batch["vertices_gt"].to(x0.device).float()
    with torch.no_grad():
        return decoder(x0, gender, is_gt=True).vertices


def evaluate_batches(estimator, batches: Iterable[dict], pairs: Sequence[tuple[int, int]],
                     measurements: bool = True) -> list[dict[str, Any]]:
    """Per-sample results for each (steps, hypotheses) pair: a list of dicts with
    ``keys``, ``cover`` [N], ``female`` [N] (-1 unknown), ``mpjpe_mm`` [N], ``pve_mm`` [N]
    and per measurement ``<name>_cm`` [N] (numpy)."""
    body, device = estimator.body_model, estimator.device
    layout = body.param_layout
    decoder = estimator.decoder
    landmarks = landmarks_for(body) if measurements else None
    out = [{"keys": [], "cover": [], "female": [], "mpjpe_mm": [], "pve_mm": [],
            "posture": [], "posture_pred": [],
            **{f"{m}_cm": [] for m in MEASUREMENTS}} for _ in pairs]
    for batch in batches:
        if "params" not in batch:
            raise ValueError("evaluation needs labelled samples (params, joints); SLP simLab "
                             "has none")
        x0 = batch["params"].to(device).float()
        gender = batch["gender"].to(device).float()
        body_gender = gender if body.takes_gender else None
        gt_joints = batch["joints"].to(device).float()
        gt_vertices = _gt_vertices(batch, decoder, x0, body_gender)
        gt_meas = (body_measurements(body, x0[:, layout.shape], body_gender, landmarks)
                   if measurements else None)
        female = torch.where(gender[:, 0] == 0.5, -1, (gender[:, 0] > 0.5).long())
        for pair, res in zip(pairs, out):
            estimator.set_sampling(steps=pair[0], hypotheses=pair[1])
            pred = estimator.predict(batch["depth"], body_gender)
            res["keys"] += list(batch.get("key", [""] * len(x0)))
            res["cover"].append(batch["cover"].cpu().numpy())
            res["female"].append(female.cpu().numpy())
            res["mpjpe_mm"].append(mpjpe_mm(pred.joints, gt_joints).cpu().numpy())
            res["pve_mm"].append(pve_mm(pred.vertices, gt_vertices).cpu().numpy())
            if "posture" in batch:
                res["posture"].append(batch["posture"].cpu().numpy())
                root = layout.unpack(pred.params.float()).root_orient
                res["posture_pred"].append(posture_from_axis_angle(root).cpu().numpy())
            if measurements:
                pm = body_measurements(body, pred.params[:, layout.shape], body_gender,
                                       landmarks)
                for name, err in measurement_errors_cm(pm, gt_meas).items():
                    res[f"{name}_cm"].append(err.numpy())
    for res in out:
        for key, value in res.items():
            if key != "keys":
                res[key] = np.concatenate(value) if value else np.zeros(0)
    return out


def summarise(per_sample: dict[str, Any]) -> dict[str, Any]:
    """Means per cover (``uncover``, ``cover1``, ``cover2``, ``all``) of MPJPE and PVE (mm),
    per gender where known, and of the measurement errors (cm); sample counts in ``n``; per
    true posture (where the data has it) MPJPE, PVE and the share whose predicted root gives
    that posture (``by_posture``)."""
    cover = per_sample["cover"]
    if len(cover) == 0:
        raise ValueError("no samples were evaluated")
    groups = {name: cover == i for i, name in enumerate(COVERS) if (cover == i).any()}
    groups["all"] = np.ones_like(cover, bool)
    out: dict[str, Any] = {"n": {k: int(m.sum()) for k, m in groups.items()}}
    for metric in ("mpjpe_mm", "pve_mm"):
        values = per_sample[metric]
        out[metric] = {k: float(values[m].mean()) for k, m in groups.items()}
    female = per_sample["female"]
    out["by_gender"] = {
        name: {"n": int((female == v).sum()),
               "mpjpe_mm": float(per_sample["mpjpe_mm"][female == v].mean()),
               "pve_mm": float(per_sample["pve_mm"][female == v].mean())}
        for name, v in (("female", 1), ("male", 0)) if (female == v).any()}
    if len(per_sample.get("height_cm", ())):
        out["shape_cm"] = {m: float(per_sample[f"{m}_cm"].mean()) for m in MEASUREMENTS}
    posture, guess = per_sample.get("posture", ()), per_sample.get("posture_pred", ())
    if len(posture) == len(cover):
        out["by_posture"] = {
            name: {"n": int((posture == i).sum()),
                   "mpjpe_mm": float(per_sample["mpjpe_mm"][posture == i].mean()),
                   "pve_mm": float(per_sample["pve_mm"][posture == i].mean()),
                   "posture_accuracy": float((guess[posture == i] == i).mean())}
            for i, name in enumerate(POSTURES) if (posture == i).any()}
    return out


def diffusion_options(diffusion: dict | None) -> dict[str, Any]:
    """Estimator keyword arguments (``num_timesteps``, ``space``, ``timesteps``) of a
    checkpoint header's ``diffusion`` block (None: the SPEC's)."""
    from disrt_core.diffusion_space import DiffusionSpace

    diffusion = diffusion or {}
    return {"num_timesteps": int(diffusion.get("num_timesteps", 100)),
            "space": DiffusionSpace.from_dict(diffusion),
            "timesteps": diffusion.get("timesteps")}


def evaluate_model(model, body, spec: DataSpec, settings: EvalSettings,
                   device: str | torch.device = "cpu",
                   decoder_config: DecoderConfig | None = None,
                   per_sample: bool = False, diffusion: dict | None = None) -> dict[str, Any]:
    """Evaluate an in-memory network on a data source; returns ``{"settings", "summary"}``
    for a single pair, or ``{"settings", "results": [{steps, hypotheses, summary}]}`` for
    a grid (``per_sample=True`` adds the per-sample values). ``diffusion``: the checkpoint
    header's block (T, space, sampler timesteps; default the SPEC's)."""
    from disrt_core.infer import Estimator
    from disrt_core.train.data import eval_batches

    device = torch.device(device)
    estimator = Estimator.from_model(model, body, decoder_config=decoder_config, device=device,
                                     seed=settings.seed, eta=settings.eta,
                                     precision=settings.precision,
                                     channels_last=settings.channels_last,
                                     **diffusion_options(diffusion))
    batches = eval_batches(spec, body, device, settings.batch_size, settings.max_samples,
                           settings.num_workers)
    pairs = settings.pairs()
    raw = evaluate_batches(estimator, batches, pairs, settings.measurements)
    results = []
    for (steps, hyps), res in zip(pairs, raw):
        entry = {"steps": steps, "hypotheses": hyps, "summary": summarise(res)}
        if per_sample:
            entry["per_sample"] = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                   for k, v in res.items()}
        results.append(entry)
    meta = {"settings": asdict(settings), "data": asdict(spec)}
    if len(results) == 1 and not settings.grid:
        return {**meta, **results[0]}
    return {**meta, "results": results}


def evaluate_checkpoint(path: str | Path, spec: DataSpec, settings: EvalSettings,
                        device: str | torch.device = "cpu", body=None,
                        smpl_dir: str | None = None, per_sample: bool = False) -> dict:
    """Evaluate a ``.safetensors`` checkpoint (the body model it names is loaded unless
    given; one for another model is refused) over ``settings.pairs()``."""
    from disrt_core.checkpoint import load_checkpoint, read_header
    from disrt_core.infer import load_body_for

    header = read_header(path)
    if body is None:
        body = load_body_for(header.model_id, smpl_dir, str(device))
    header.check_compatible(body.model_id, body.param_layout, source=str(path))
    model, header = load_checkpoint(path, param_layout=body.param_layout)
    grid = settings.grid or [(settings.steps, settings.hypotheses)]
    result = evaluate_model(model, body, spec, EvalSettings(**{**asdict(settings),
                                                               "grid": grid}),
                            device, header.decoder, per_sample, header.diffusion)
    return {"checkpoint": str(path), "body_model": body.model_id, **result}


def _cell(summary: dict, cover: str) -> str:
    if cover not in summary["mpjpe_mm"]:
        return "–"
    return f"{summary['mpjpe_mm'][cover]:.2f} / {summary['pve_mm'][cover]:.2f}"


def markdown_table(rows: Sequence[dict[str, Any]], title: str | None = None) -> str:
    """Rows ``{"label", "steps", "hypotheses", "summary"}`` as a Markdown table in the form
    of the paper's Table 2: MPJPE / PVE (mm) per cover and overall, shape errors (cm)."""
    lines = []
    if title:
        lines += [f"**{title}**", ""]
    shape = any("shape_cm" in r["summary"] for r in rows)
    head = ["Model", "DDIM steps", "Hypotheses", "Uncover", "Cover 1", "Cover 2", "All", "N"]
    if shape:
        head += ["height", "chest", "waist", "hips"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        s = row["summary"]
        cells = [row.get("label", ""), str(row["steps"]), str(row["hypotheses"]),
                 *(_cell(s, c) for c in (*COVERS, "all")), str(s["n"]["all"])]
        if shape:
            cells += ([f"{s['shape_cm'][m]:.2f}" for m in MEASUREMENTS] if "shape_cm" in s
                      else ["–"] * 4)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "MPJPE / PVE in mm (no alignment, label frame); body-measurement errors in "
              "cm (SPEC §6)."]
    return "\n".join(lines) + "\n"
