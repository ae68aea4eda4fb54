"""Every option of the scene generator (:class:`SimConfig`, stored in each dataset's
manifest), the generator's version and its stage names."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from disrt_core.geometry.bedframe import SLP_DANALAB_BED_MM
from disrt_core.sim import mattress
from disrt_core.sim.poses import DEFAULT_POSTURE_WEIGHTS
from disrt_core.sim.scene import PILLOW_PROB
from disrt_core.sim.sensors import get_sensor

#: 1.1 (2026-12-05): the pose redraws drawn for all bodies at once; the same seed gives other
#: scenes than 1.0 did. 1.2 (2026-12-05): the bed fit of ``bed_pose: fit`` moves an end that
#: took in a low footboard in to the board (``bedfit_boards.in_to_boards``): same scenes,
#: some fitted beds (and so labels and network images) differ.
#: 1.3 (2026-12-06): stacked head pillows and a second blanket thrown over the first
#: (``pillow_stack_prob``, ``throw_prob``), wedges and bolsters against the body
#: (``prop_prob``), stiffer covers (sag from 1 and 0.5 1/m,
#: ``drape.COVER_RANGES``); the same seed gives other scenes. 1.4 (2026-12-07): rumpled
#: main covers as an option (``rumple_prob``, ``disrt_core.sim.rumple``: bridging, taut,
#: gathered waves); off by default, and then the same scenes as 1.3. 1.5 (2026-12-07): room
#: footboards up to 0.6 m above the mattress (before 0.35; ``disrt_core.sim.room``): the
#: same random stream, so the same scenes but for the footboards' heights. 1.6 (2026-12-07):
#: a room's bed base reaches ``room.RIM_BY_BASE`` beyond the mattress by its type (divan
#: 0-1.5 cm, frame 1-6, hospital 1-4; 4 cm for all before), and its boards stand that far
#: from the mattress; from a stream of its own, so the same rooms but for the rim (bed
#: scenes unchanged).
GENERATOR_VERSION = "1.6"
STAGES = ("pose", "skinning", "sinkage", "drape", "render", "noise", "preprocessing")
SCENES = ("bed", "room")


@dataclass
class SimConfig:
    """Every generator option (stored in the dataset manifest)."""

    sensor: str = "kinect2"
    covers: tuple[int, ...] = (0, 1, 2)
    posture_weights: tuple[float, ...] = DEFAULT_POSTURE_WEIGHTS
    pillow_prob: float = PILLOW_PROB
    #: [choice] shares of head pillows that are two stacked (disrt_core.sim.scene), of beds
    #: with a second blanket thrown over the first (disrt_core.sim.drape.sample_throws) and
    #: of bodies with a wedge or bolster against them (disrt_core.sim.props), and of main
    #: covers that are rumpled (disrt_core.sim.rumple: off, training on them did not pay, see
    #: there); at 0 they draw no extra random numbers
    pillow_stack_prob: float = 0.25
    throw_prob: float = 0.3
    prop_prob: float = 0.3
    rumple_prob: float = 0.0
    stiffness: tuple[float, float] = mattress.STIFFNESS_RANGE
    camera_height: tuple[float, float] = (1.9, 2.5)
    noise: bool = True
    bed_mm: float = SLP_DANALAB_BED_MM
    max_pose_tries: int = 10
    cpu_chunk: int = 16  # frames rendered at once on the CPU (memory reuse; orders the noise)
    settle_iterations: int = 3  # rounds of limb settling (disrt_core.sim.rest)
    #: "bed": the bed, its frame and the floor seen from above (SLP-like); "room": a whole
    #: room around the bed seen by a ceiling camera anywhere above it (disrt_core.sim.room)
    scene: str = "bed"
    room_camera_height: tuple[float, float] = (1.4, 3.2)  # room scenes: above the mattress
    max_pitch_deg: float = 30.0  # room scenes: camera pitch from looking straight down
    #: shares of scenes with someone lying in bed, an empty bed, someone sitting on its edge
    occupancy: tuple[float, float, float] = (1.0, 0.0, 0.0)
    objects_on_bed: float = 0.5  # chance of each of up to three things lying on the bed
    sdk_filter_prob: float = 0.5  # stereo frames passed through the SDK's spatial filter
    #: the bed pose the network image is made with: "true", or "fit": found on the raw frame
    #: as the node does (labels then in the fitted bed's frame, so fit errors are trained)
    bed_pose: str = "true"

    def __post_init__(self) -> None:
        get_sensor(self.sensor)
        if self.bed_pose not in ("true", "fit"):
            raise ValueError(f"bed_pose must be 'true' or 'fit', got {self.bed_pose!r}")
        if self.scene not in SCENES:
            raise ValueError(f"scene must be one of {SCENES}, got {self.scene!r}")
        self.occupancy = tuple(float(p) for p in self.occupancy)
        if len(self.occupancy) != 3 or min(self.occupancy) < 0 or sum(self.occupancy) <= 0:
            raise ValueError("occupancy needs three non-negative shares (in bed, empty, "
                             f"sitting on the edge), got {self.occupancy}")
        self.covers = tuple(int(c) for c in self.covers)
        if not self.covers or any(c not in (0, 1, 2) for c in self.covers):
            raise ValueError(f"covers must be a non-empty subset of 0, 1, 2 (uncover, sheet, "
                             f"blanket), got {self.covers}")

    def to_dict(self) -> dict:
        return asdict(self)
