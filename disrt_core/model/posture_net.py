"""The posture classifier: a small CNN from the network's depth image to the four postures
and, optionally, the head end.

:class:`PostureNet` takes the normalised depth image the denoiser gets, [B,1,128,54] in
[0, 1] (bed = 1, ``disrt_core.geometry.bedframe.normalize_depth``; bed frame, row 0 at the
head end) and returns logits [B,4] over ``disrt_core.posture.POSTURES`` (supine, left,
right, prone), and with ``PostureNetConfig.head_end`` a fifth column: the log-odds that
the person's head lies toward row 0 as the bed frame says (:func:`head_logit`; negative:
the bed was taken end for end; about 0 for an empty bed or someone sitting on its edge,
trained with the target 1/2 there). It is trained with cross-entropy on the generator's
``posture`` labels and binary cross-entropy on the head's side of the pelvis
(``training/train_posture.py``), while the denoiser reads the posture off the root
orientation of a regressed parameter vector: under a blanket that regression answers
between supine and a side (``docs/rooms_eval.md``), a classifier has to choose.

Architecture [choice]: per level two 3×3 convolutions with batch norm and ReLU, the first
of each level after the first with stride 2 (128×54 → 64×27 → 32×14 → 16×7 → 8×4), then the
whole 8×4 map flattened (where the shoulders and hips lie matters, an average would lose
it), dropout and one Linear. 0.27 M parameters; ~2 ms per frame on one CPU core.

The node's posture [choice] is the classifier's with a vote of the pose model
(:func:`combined_posture`): the classifier's probabilities plus ``POSE_VOTE`` = 0.4 on the
posture of the estimated body's root. So the classifier decides wherever it is sure, and
the body's root where the classifier hesitates between it and another posture.
``POSE_VOTE`` was chosen on the source held-out sets (generated rooms and bed scenes) as the
largest vote that keeps the rooms accuracy of the classifier alone (0.2-0.4 all do; 1.0
is the pose model alone); on the SIM2REAL target domain, not used for the choice, it is the
better of the three (``docs/posture_eval.md``).

The head end's output [choice, 2026-12-06, sixth session] replaces the node's second
inference on the turned image when it votes on the bed's head end
(:mod:`disrt_core.head_end`): on held-out frames it decides 99.1 % of generated room frames
at |log-odds| ≥ 1.5 with 0.29 % wrong, against 64.7 % and 0.59 % for the pose network's
presence both ways round; the posture stays as accurate (``docs/posture_eval.md``).

Weights: one safetensors file with a JSON header under the metadata key ``disrt_posture``
(format, :class:`PostureNetConfig`, a training summary); :func:`save_posture_net` /
:func:`load_posture_net` (:mod:`disrt_core.model.weights_file`). Nothing is pickled.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import Tensor, nn

from disrt_core.geometry.bedframe import NET_SHAPE
from disrt_core.model import weights_file

FORMAT = "disrt-posture-1"
META_KEY = "disrt_posture"
WHAT = "posture-classifier weights"  # in messages
DEFAULT_POSTURE_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / \
    "posture.safetensors"
FIX = "reinstall the package or train one with training/train_posture.py"
POSE_VOTE = 0.4  # the pose model's vote in combined_posture (module docstring)


@dataclass(frozen=True)
class PostureNetConfig:
    """widths: channels of the levels, level 0 at 128×54, each next at half the size;
    head_end: a fifth output, the head end's log-odds (module docstring; False in files
    written before it)."""

    widths: tuple[int, ...] = (16, 32, 48, 64, 96)
    dropout: float = 0.2
    head_end: bool = False

    def __post_init__(self) -> None:
        if len(self.widths) < 1 or min(self.widths) < 1:
            raise ValueError(f"widths must be positive channel counts, got {self.widths}")


def _grid(levels: int) -> tuple[int, int]:
    h, w = NET_SHAPE
    for _ in range(levels - 1):  # stride 2, padding 1, kernel 3: ceil(n / 2)
        h, w = (h + 1) // 2, (w + 1) // 2
    return h, w


class PostureNet(nn.Module):
    """Depth [B,1,128,54] in [0, 1] -> posture logits [B,4], with ``head_end`` [B,5]
    (:func:`posture_logits`, :func:`head_logit`; module docstring)."""

    def __init__(self, config: PostureNetConfig = PostureNetConfig()) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        cin = 1
        for level, cout in enumerate(config.widths):
            for k in range(2):
                stride = 2 if level > 0 and k == 0 else 1
                layers += [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                           nn.ReLU(inplace=True)]
                cin = cout
        self.features = nn.Sequential(*layers)
        h, w = _grid(len(config.widths))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(config.dropout),
                                  nn.Linear(cin * h * w, 4 + int(config.head_end)))

    def forward(self, depth: Tensor) -> Tensor:
        if depth.ndim != 4 or tuple(depth.shape[1:]) != (1, *NET_SHAPE):
            raise ValueError(f"depth must be [B,1,{NET_SHAPE[0]},{NET_SHAPE[1]}], got "
                             f"{tuple(depth.shape)}")
        return self.head(self.features(depth))


def posture_logits(out: Tensor) -> Tensor:
    """The posture logits [B,4] of a :class:`PostureNet`'s output."""
    return out[:, :4]


def head_logit(out: Tensor) -> Tensor | None:
    """The head end's log-odds [B] of a :class:`PostureNet`'s output (+: the head toward row
    0 of the image, as the bed frame has it), or None for a net without that output."""
    return out[:, 4] if out.shape[1] > 4 else None


def save_posture_net(net: PostureNet, path: str | Path, training: dict | None = None) -> Path:
    """Write ``net`` (float32) with its header to ``path`` atomically."""
    header = {"format": FORMAT, "config": asdict(net.config), "training": training or {}}
    return weights_file.save_weights(path, net, META_KEY, header)


def read_posture_header(path: str | Path) -> dict:
    """The JSON header of a posture file; errors naming the file and the fix."""
    return weights_file.read_header(path, META_KEY, FORMAT, WHAT, FIX)


def load_posture_net(path: str | Path = DEFAULT_POSTURE_WEIGHTS,
                     device: str | torch.device = "cpu") -> PostureNet:
    """The classifier in ``path`` (default: the shipped one), in eval mode on ``device``."""
    header = read_posture_header(path)
    names = {f.name for f in fields(PostureNetConfig)}
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in header["config"].items()
           if k in names}
    net = PostureNet(PostureNetConfig(**cfg))
    return weights_file.load_weights(net, path, WHAT, FIX).eval().to(device)


def has_head_end(net: torch.nn.Module | None) -> bool:
    """Whether ``net`` is a :class:`PostureNet` with the head end's output."""
    return isinstance(net, PostureNet) and net.config.head_end


def combined_posture(logits: Tensor, pose_posture: Tensor, vote: float = POSE_VOTE) -> Tensor:
    """Posture index [B]: argmax of the classifier's probabilities (``logits`` [B,4], or
    its whole output [B,5]) plus ``vote`` on the pose model's posture ``pose_posture`` [B]
    (module docstring)."""
    logits = posture_logits(logits)
    votes = torch.nn.functional.one_hot(pose_posture.long(), 4).to(logits.dtype)
    return (logits.softmax(-1) + vote * votes).argmax(-1)
