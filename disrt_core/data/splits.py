"""SLP subject splits and the real-data fractions of the paper's Table 1 (SPEC §5).

Whole subjects in id order; subject 7 is excluded everywhere (its alignment was wrong).
Each danaLab subject gives 45 poses × 3 covers = 135 samples. DiSRT's split files
(``data_files/real/real_1_10.txt`` ...) list subject ids as ``00001`` per line;
:func:`read_split_file` / :func:`write_split_file` use that format.

======== ============= ========= ======= ========
fraction split          subjects  samples real:sim
======== ============= ========= ======= ========
11 %     real_1_10      9         1,215   1:80
24 %     real_1_20      19        2,565   1:38
37 %     real_1_30      29        3,915   1:25
49 %     real_1_40      39        5,265   1:18
100 %    real_1_80      79        10,665  1:9
test     real_81_102    22        2,970   –
======== ============= ========= ======= ========
"""

from __future__ import annotations

from pathlib import Path

DANALAB_SUBJECTS = 102
SIMLAB_SUBJECTS = 7
EXCLUDED_SUBJECTS = (7,)
POSES_PER_SUBJECT = 45
COVERS_PER_POSE = 3
BODYPRESSURE_SAMPLES = 97_495  # the 18 BodyPressureSD training files (SPEC §7.5)

#: DiSRT's split files: name -> (first, last) subject id, inclusive, danaLab unless noted.
SPLITS: dict[str, tuple[int, int]] = {
    "real_1_10": (1, 10), "real_1_20": (1, 20), "real_1_30": (1, 30), "real_1_40": (1, 40),
    "real_1_50": (1, 50), "real_1_60": (1, 60), "real_1_70": (1, 70), "real_1_80": (1, 80),
    "real_71_102": (71, 102), "real_81_102": (81, 102), "real_1_102": (1, 102),
    "hospital_all": (1, 7),  # simLab (hospital setting), unlabeled; its subject 7 is kept
}  # fmt: skip
TEST_SPLIT = "real_81_102"
TRAIN_POOL = "real_1_80"
#: Table 1 column -> split.
TABLE1_FRACTIONS: dict[str, str] = {
    "11%": "real_1_10", "24%": "real_1_20", "37%": "real_1_30", "49%": "real_1_40",
    "100%": "real_1_80",
}  # fmt: skip


def subject_range(first: int, last: int, exclude=EXCLUDED_SUBJECTS) -> list[int]:
    """Subject ids first..last (inclusive) without the excluded ones."""
    return [s for s in range(first, last + 1) if s not in exclude]


def split_subjects(name: str) -> list[int]:
    """Subject ids of one of DiSRT's split files (``SPLITS``)."""
    if name not in SPLITS:
        raise KeyError(f"unknown split {name!r}; known: {sorted(SPLITS)}")
    first, last = SPLITS[name]
    return subject_range(first, last, exclude=() if name == "hospital_all" else EXCLUDED_SUBJECTS)


def fraction_subjects(fraction: float) -> list[int]:
    """The first ``round(fraction · 79)`` training subjects in id order (the pool is
    ``real_1_80`` = 79 subjects): 0.11 -> real_1_10, 0.24 -> real_1_20, ... 1.0 -> real_1_80.
    Reproducible: no randomness, whole subjects."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    pool = split_subjects(TRAIN_POOL)
    return pool[:max(1, round(fraction * len(pool)))]


def sample_count(subjects, covers: int = COVERS_PER_POSE, poses: int = POSES_PER_SUBJECT) -> int:
    """Samples of a split name or subject list: subjects × poses × covers."""
    ids = split_subjects(subjects) if isinstance(subjects, str) else list(subjects)
    return len(ids) * poses * covers


def real_to_sim_ratio(subjects, sim_samples: int = BODYPRESSURE_SAMPLES) -> float:
    """Synthetic samples per real sample (Table 1's real:sim = 1:this)."""
    return sim_samples / sample_count(subjects)


def read_split_file(path: str | Path) -> list[int]:
    """Subject ids of a DiSRT split file (one ``00001``-style id per line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split file not found")
    ids = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            if not line.strip().isdigit():
                raise ValueError(f"{path}:{number}: expected a subject id like 00001, "
                                 f"got {line!r}")
            ids.append(int(line))
    return ids


def write_split_file(path: str | Path, subjects) -> None:
    """Write subject ids in DiSRT's format (``00001`` per line, no trailing newline)."""
    Path(path).write_text("\n".join(f"{int(s):05d}" for s in subjects))
