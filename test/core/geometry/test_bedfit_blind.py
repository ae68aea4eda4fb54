"""An edge with a blind strip inside it (``bedfit_checks.blind_edges``, weak cause
``blind_edge``): the issue's bedroom seen by a time-of-flight camera, with the last
centimetres of the mattress's head end blanked as an Azure Kinect blanks a depth edge."""

from __future__ import annotations

import math

import torch

from disrt_core.geometry.bedfit_batch import fit_beds
from disrt_core.geometry.bedfit_checks import blind_edges
from disrt_core.geometry.bedfit_cover import profiles
from disrt_core.geometry.bedfit_result import WEAK_CAUSES
from disrt_core.geometry.bedfit_words import weak_because
from test.core.geometry.bedscenes import bedroom, view
from test.core.geometry.test_bedfit_edges import _truth_rectangle

BLIND = WEAK_CAUSES.index("blind_edge")


def _frame():
    return view(bedroom(floor=0.3), "azure_nfov", 2.4, tilt=(0.12, -0.05), yaw=-math.pi / 2,
                seed=1)


def _blanked(frame, strip: float):
    """The frame's depth (m) with the pixels that see the mattress top within ``strip`` m
    of its head end (and up to 1 cm beyond) set to no reading."""
    depth = frame.depth_raw[0].to(torch.float32) / 1000
    n, offset, _sigma, centre, eu, ev, half = (x[0] for x in _truth_rectangle(frame))
    K = frame.K[0].to(torch.float32)
    v, u = torch.meshgrid(torch.arange(depth.shape[0], dtype=torch.float32),
                          torch.arange(depth.shape[1], dtype=torch.float32), indexing="ij")
    rays = torch.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], torch.ones_like(u)],
                       -1)
    on_plane = rays * (-offset / (rays @ n))[..., None]  # each pixel's ray on the plane
    along = (on_plane - centre) @ ev  # toward the head
    across = ((on_plane - centre) @ eu).abs()
    hide = (along > half[1] - strip) & (along < half[1] + 0.01) & (across < half[0])
    return torch.where(hide, 0.0, depth)[None]


def test_a_blind_strip_inside_an_edge_makes_the_fit_weak():
    """With its last 5 cm blanked, the head end's fitted edge (at the board, the step's far
    side) lies beside a strip that reads nothing: ``blind_edges`` says so for the true
    rectangle too (where in the strip the mattress ends is not seen), and the fit is weak
    for it, in words. Unblanked, or with only the last 1 cm blanked (the width of a
    ToF camera's ordinary mixed pixels at a depth edge), it is not."""
    frame = _frame()
    n, offset, _sigma, centre, eu, ev, half = _truth_rectangle(frame)
    K = frame.K.float()
    clear = frame.depth_raw.to(torch.float32) / 1000

    def blind(depth):
        return bool(blind_edges(*profiles(depth, K, n, offset, centre, eu, ev, half)[:2])[0])

    assert not blind(clear)
    assert not blind(_blanked(frame, 0.01))
    blanked = _blanked(frame, 0.05)
    assert blind(blanked)

    fits = fit_beds(blanked * 1000, K)
    assert bool(fits.ok[0]) and bool(fits.weak_causes[0, BLIND]) and bool(fits.weak[0])
    assert any("read nothing" in b for b in weak_because(fits, 0))
    fits = fit_beds(clear * 1000, K)
    assert bool(fits.ok[0]) and not bool(fits.weak_causes[0, BLIND])
