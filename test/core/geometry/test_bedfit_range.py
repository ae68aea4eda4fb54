"""The far end of the mattress beyond a time-of-flight camera's range (``bedfit_range``):
put a usual length from the near end, and the fit flagged ``beyond_range``."""

from __future__ import annotations

import pytest

from disrt_core.geometry.bedfit import weak_because
from disrt_core.geometry.bedfit_batch import fit_beds
from disrt_core.geometry.bedfit_range import NOMINAL
from disrt_core.geometry.bedfit_result import WEAK_CAUSES
from test.core.geometry.bedscenes import bedroom, fit_error, view

BEYOND = WEAK_CAUSES.index("beyond_range")
RANGE_MM = 3860  # an Azure Kinect's narrow mode reads nothing deeper
# (height, offset along the bed, tilt) of the camera 2-2.3 m beyond the foot end of a 2 m
# mattress, looking toward its head end, which lies 4.1-4.3 m deep: 0.25-0.6 m of the
# mattress is beyond the range (the measured rectangle was 1.4-1.75 m long: refused).
VIEWS = ((3.0, -2.0, 0.55), (3.0, -2.3, 0.6))


def _frame(height, offset, tilt):
    room = bedroom(0.9, NOMINAL, person=True, pillow=True, headboard=None, furniture=False)
    return view(room, "azure_nfov", height, offset=(0.0, offset), tilt=(tilt, 0.0), seed=1)


@pytest.mark.parametrize("pose", VIEWS)
def test_a_far_end_beyond_the_range_is_put_at_the_usual_length(pose):
    frame = _frame(*pose)
    depth = frame.depth_raw.clone()
    assert float(frame.mattress_corners[0, :, 2].max()) > RANGE_MM / 1000 + 0.2
    depth[depth > RANGE_MM] = 0
    fits = fit_beds(depth, frame.K.float())
    assert bool(fits.ok[0]), fits.reason_text(0)
    assert bool(fits.weak[0]) and bool(fits.weak_causes[0, BEYOND])
    assert not bool(fits.weak_causes[0, WEAK_CAUSES.index("inferred_end")])
    assert any("range" in b for b in weak_because(fits, 0))
    assert float(fits.size[0, 1]) == pytest.approx(NOMINAL, abs=0.03)
    assert fit_error(fits, frame) < 0.05


def test_a_bed_read_to_its_far_end_is_measured():
    """The same view with the whole mattress in range: measured, nothing assumed."""
    frame = _frame(*VIEWS[0])
    fits = fit_beds(frame.depth_raw, frame.K.float())
    assert bool(fits.ok[0]) and not bool(fits.weak_causes[0, BEYOND])
    assert fit_error(fits, frame) < 0.05
