"""Find the mattress in raw depth frames, batched (torch, CPU or GPU): :func:`fit_beds`.

The mattress is not the largest or the nearest plane but a rectangle 0.7–2.1 m wide and
1.8–2.4 m long (``width``, ``length``), horizontal, raised above the floor, completely in
view, with or without a person, pillows or a blanket on it. Stages (one module each):

1. :mod:`bedfit_levels`: block-averaged points, the up direction (normal of the horizontal
   surfaces), the levels (floor, mattress, table tops, seats ...) with their noise;
2. :mod:`bedfit_regions`: per level, top-down regions of what lies from the level to 0.6 m
   above it; the two largest regions of each level are candidates, with a first rectangle;
3. :mod:`bedfit_rect`: the three most mattress-like candidates measured on a fine grid
   aligned with them (extent, residual turn, again), and checked (:mod:`bedfit_checks`):
   mattress-sized, full (what a person on it hides counts), partly flat, raised, no sofa
   back, not hidden by something nearer the camera, and completely in view (corners and a
   strip 3 cm beyond each edge inside the image and its valid window: a stereo camera's
   blind left band counts as outside);
   a refused frame is fitted once more with thin lines without readings bridged for the
   fine grid's opening (:mod:`bedfit_gaps`);
4. :mod:`bedfit_edges`: each candidate's four edges measured again on the raw pixels; the
   size and view checks use these measured rectangles; :mod:`bedfit_furniture` cuts an end
   that ran onto furniture pushed against it back to the mattress's end; :mod:`bedfit_boards`
   moves the chosen one's ends to a wall they meet and to the head- and footboards the ray
   test could not place them at;
5. :mod:`bedfit_headnet`: the head end (``head="auto"``) from a small classifier fitted on
   generated rooms, on height profiles along and across the mattress and the hand-set
   person, pillow and board cues of :mod:`bedfit_head`, with a confidence in [0.5, 1] (the
   end unknown where a head-like bump lies at the other end; an overbed table's top left
   out, :mod:`bedfit_table`; a raised head section measured, :mod:`bedfit_incline`); or
   the image side given.

The best passing candidate (largest fill, then the support of its measured edges and
flatness) is the mattress. A frame without one gets ``ok = False`` and a ``reason``
(:data:`bedfit_result.REASONS`). A fit with an edge the camera hardly sees (a bed against a wall, a
blanket over the edge, a board hiding an end), with a gap running along it (a bed and a
same-height bench taken as one) or at a level of large depth noise is ``weak``: its
corners may be several cm off, so it is worth checking or giving the corners.

Input: ``depth_mm`` [B,H,W] (any dtype, mm along the optical axis, 0 or non-finite = no
reading), ``K`` [B,3,3]. All frames of a call have one size. No per-frame Python loops on a
GPU (component labelling is propagated on the device; a few host synchronisations per
batch); on the CPU the regions are labelled with OpenCV. The result of a frame does not
depend on the batch it came in (the random hypotheses are a fixed pattern).
Frames: camera optical frame (x right, y down, z forward), metres; the bed (label) frame
of SPEC §1.4 as in :mod:`disrt_core.geometry.bedfit` (centre at ``BED_CENTRE_LABEL``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from disrt_core.geometry import bedfit_boards as boards_mod
from disrt_core.geometry import bedfit_checks as checks_mod
from disrt_core.geometry import bedfit_cover as cover_mod
from disrt_core.geometry import bedfit_edges as edges_mod
from disrt_core.geometry import bedfit_furniture as furniture_mod
from disrt_core.geometry import bedfit_gaps as gaps_mod
from disrt_core.geometry import bedfit_incline as incline_mod
from disrt_core.geometry import bedfit_range as range_mod
from disrt_core.geometry import bedfit_rect as rect_mod
from disrt_core.geometry import bedfit_shadow as shadow_mod
from disrt_core.geometry.bedfit_headnet import head_end, min_confidence
from disrt_core.geometry.bedfit_levels import (
    block_points,
    choose_stride,
    find_levels,
    up_direction,
)
from disrt_core.geometry.bedfit_regions import (
    band_tolerance,
    coarse_grid,
    coarse_rectangles,
    components,
    level_masks,
    plane_basis,
)
from disrt_core.geometry.bedfit_result import (
    HEAD_ACROSS,
    HEAD_SIDES,
    NO_MATTRESS,
    OK,
    WEAK_GRAZING,
    WEAK_NOISE,
    WEAK_SEAM,
    WEAK_SUPPORT,
    BedFits,
)
from disrt_core.geometry.bedframe import BED_CENTRE_LABEL

LEVELS = 5
COARSE = 4
FINE_CANDIDATES = 3
CHUNK = 128  # frames fitted at once by default (fit_beds' chunk)
_IMAGE_DIRS = {"top": (0.0, -1.0), "bottom": (0.0, 1.0), "left": (-1.0, 0.0), "right": (1.0, 0.0)}


def fit_beds(depth_mm: Tensor, K: Tensor, head: str = "auto", *, head_fallback: str = "top",
             min_head_confidence: float | None = None, max_tilt_deg: float = 40.0,
             width: tuple[float, float] = (0.7, 2.1), length: tuple[float, float] = (1.8, 2.4),
             size_tol: float = 0.03, min_fill: float = 0.8, min_flat: float = 0.1,
             stride: int | None = None, chunk: int = CHUNK, debug: dict | None = None
             ) -> BedFits:
    """Mattress fits of raw depth frames (see the module docstring).

    head: ``"auto"`` (decided from the bed, see :mod:`bedfit_headnet`; below
    ``min_head_confidence``, default the classifier's own threshold chosen in
    cross-validation, the head end is unknown and put toward ``head_fallback``) or the
    image side the head end is on (``top``, ``bottom``, ``left``, ``right``). ``stride``:
    block size (default: about 16,000 blocks). ``chunk``: frames processed at once.
    ``debug``: a dict to fill with the intermediate results of the last chunk (levels,
    grids, candidates; for pictures and tests).
    """
    if head != "auto" and head not in HEAD_SIDES:
        raise ValueError(f"head must be one of {('auto', *HEAD_SIDES)}, got {head!r}")
    if head_fallback not in HEAD_SIDES:
        raise ValueError(f"head_fallback must be one of {HEAD_SIDES}, got {head_fallback!r}")
    if depth_mm.ndim != 3 or K.shape != (depth_mm.shape[0], 3, 3):
        raise ValueError(f"expected depth [B,H,W] and K [B,3,3], got {tuple(depth_mm.shape)} "
                         f"and {tuple(K.shape)}")
    if min_head_confidence is None:
        min_head_confidence = min_confidence() if head == "auto" else 0.5
    options = {"head": head, "fallback": head_fallback, "min_conf": min_head_confidence,
               "max_tilt": max_tilt_deg, "stride": stride or choose_stride(*depth_mm.shape[1:]),
               "limits": {"width": width, "length": length, "size_tol": size_tol,
                          "min_fill": min_fill, "min_flat": min_flat}, "debug": debug}
    # [why] Under inference mode the ~10,000 small ops of a fit skip the autograd and
    # version-counter bookkeeping (~10 % less CPU time); torch.cat outside it makes the
    # results normal tensors again, and the debug dict's are copied out.
    with torch.inference_mode():
        parts = [gaps_mod.refit_refused(_fit, depth_mm[i:i + chunk],
                                        K[i:i + chunk].to(depth_mm.device), options)
                 for i in range(0, depth_mm.shape[0], chunk)]
    if debug is not None:
        debug.update(_normal(debug))
    return BedFits(**{k: torch.cat([getattr(p, k) for p in parts]) for k in
                      BedFits.__dataclass_fields__})


def _normal(value):
    """Tensors in nested dicts copied out of inference mode (normal tensors)."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value.clone() if isinstance(value, Tensor) else value


def _fit(depth: Tensor, K: Tensor, opt: dict) -> BedFits:
    B, _H, _W = depth.shape
    dev = depth.device
    # Unread: the share of blocks (1/80 of the width) without a single reading; a stereo
    # camera's scattered holes leave few, a surface beyond the range leaves many.
    # The frame in metres, 0 where there is no reading (0, negative or not finite): made
    # once for the blocks and the edge stages (fewer passes over the frame than a mask).
    depth_m = (depth.to(torch.float32) / 1000).nan_to_num(0.0, 0.0, 0.0).clamp(min=0)
    block = max(2, -(-depth.shape[-1] // 80))
    unread = 1.0 - (F.max_pool2d(depth_m[:, None], block, ceil_mode=True) > 0).flatten(1).to(
        torch.float32).mean(1)
    farthest = depth_m.flatten(1).amax(1)  # (x / 1000 rounds monotonically: the same maximum)
    stride = opt["stride"]
    K = K.to(torch.float32)
    points, valid = block_points(depth_m, K, stride)
    flat, vflat = points.reshape(B, -1, 3), valid.reshape(B, -1)
    n_valid = vflat.sum(1)
    n, found = up_direction(points, valid, max_tilt_deg=opt["max_tilt"])
    d = -(flat @ n[:, :, None])[..., 0]
    levels = find_levels(d, vflat, count=LEVELS)
    e1, e2 = plane_basis(n)
    a, b = (flat @ e1[:, :, None])[..., 0], (flat @ e2[:, :, None])[..., 0]
    grid = coarse_grid(a, b, d, vflat, levels)
    comps = components(level_masks(grid, levels)).to(dev)  # [B,L,2,G,G]
    per_level = comps.shape[2]
    comps = comps.reshape(B, -1, *comps.shape[-2:])
    cand_level = torch.arange(LEVELS, device=dev).repeat_interleave(per_level)[None].expand(B, -1)
    # Only the COARSE regions nearest a mattress's area (1.3-5 m² with what lies beside it)
    # are measured.
    area = comps.flatten(2).sum(-1) * grid["cell"][:, None] ** 2
    near = -(torch.log(area.clamp(min=1e-3) / 2.5)).abs()
    keep = near.topk(COARSE, dim=1).indices  # [B,COARSE]
    comps = edges_mod.take(comps, keep)
    cand_level = torch.gather(cand_level, 1, keep)
    coarse = coarse_rectangles(comps, grid)
    # Is there a floor 0.25-0.9 m below each level?
    gap = levels["d"][:, None, :] - levels["d"][:, :, None]  # [B,L(level),L(other)]
    lower = ((gap >= 0.25) & (gap <= 0.9) & levels["ok"][:, None, :]).any(-1)
    lvl_ok = torch.gather(levels["ok"], 1, cand_level)
    # The most mattress-like candidates go to the fine stage.
    short, long_ = coarse["size"].amin(-1), coarse["size"].amax(-1)
    dev_size = ((0.6 - short).clamp(min=0) + (short - 2.3).clamp(min=0)
                + (1.6 - long_).clamp(min=0) + (long_ - 2.7).clamp(min=0))
    usable = lvl_ok & (coarse["area"] >= 0.4)
    score = -dev_size + 0.5 * torch.gather(lower, 1, cand_level) + 1e-3 * coarse["area"]
    score = torch.where(usable, score, score - 100.0)
    sel = score.topk(FINE_CANDIDATES, dim=1).indices  # [B,KF]
    sel_level = torch.gather(cand_level, 1, sel)
    lv, sg = torch.gather(levels["d"], 1, sel_level), torch.gather(levels["sigma"], 1, sel_level)
    spacing = lv * stride / K[:, 0, 0, None]
    pixel_area = stride**2 / (K[:, 0, 0] * K[:, 1, 1])
    phi, centre, size = edges_mod.take(coarse["phi"], sel), edges_mod.take(coarse["centre"], sel), \
        edges_mod.take(coarse["size"], sel)
    for it in range(2):
        fine = rect_mod.fine_maps(a, b, d, vflat, phi, centre, size, lv, sg, spacing,
                                  (e1, e2, n), pixel_area, deep=0.07 if it == 0 else 0.0,
                                  bridge=opt.get("bridge", False))
        rect = rect_mod.extents(fine["soft"], fine["cell"], size, counts=(
            fine["box"][:, :, rect_mod.CH_BAND], fine["box"][:, :, rect_mod.CH_ALL]))
        rect = rect_mod.shadowed_ends(fine, rect_mod.trim_boards(fine, rect))
        if it == 0:  # re-centre, turn by the edges' residual angle, measure again
            delta = rect_mod.residual_angle(fine["soft"], fine["cell"], rect)
            uc, vc = (rect[..., 0] + rect[..., 1]) / 2, (rect[..., 2] + rect[..., 3]) / 2
            cos, sin = torch.cos(phi), torch.sin(phi)
            centre = centre + torch.stack([uc * cos - vc * sin, uc * sin + vc * cos], -1)
            size = torch.stack([rect[..., 1] - rect[..., 0], rect[..., 3] - rect[..., 2]], -1)
            phi = phi + delta
            found_at = lv
            lv = rect_mod.lower_level(fine, rect, lv)
    # A level moved down under a blanket stays there (the edges' plane may rise a little).
    floor = lv - torch.where(lv > found_at, edges_mod.BLANKET_RISE, float("inf"))
    chk = checks_mod.checks(fine, rect, torch.gather(lower, 1, sel_level), opt["limits"])
    flags = chk["flags"] | torch.where(edges_mod.take(usable, sel), 0, rect_mod.FLAG_EMPTY)
    # The same bed found again from another level (moved to the same mattress level):
    # keep the one that fills its rectangle best.
    uc, vc = (rect[..., 0] + rect[..., 1]) / 2, (rect[..., 2] + rect[..., 3]) / 2
    cos, sin = torch.cos(phi), torch.sin(phi)
    mid = centre + torch.stack([uc * cos - vc * sin, uc * sin + vc * cos], -1)
    dup = checks_mod.duplicates(lv, mid, flags, chk["fill"])
    flags = flags | torch.where(dup, rect_mod.FLAG_EMPTY, 0)
    # Corners in 3D (on the level's plane) and in view?
    cos, sin = torch.cos(phi), torch.sin(phi)
    eu = cos[..., None] * e1[:, None] + sin[..., None] * e2[:, None]  # [B,KF,3]
    ev = -sin[..., None] * e1[:, None] + cos[..., None] * e2[:, None]
    origin = (centre[..., 0:1] * e1[:, None] + centre[..., 1:2] * e2[:, None]
              - lv[..., None] * n[:, None])
    u0, u1, v0, v1 = rect.unbind(-1)
    # Every candidate's edges measured again on the raw pixels (bedfit_edges): the size and
    # view checks use the measured rectangle (a grid rectangle cut short by a blanket or
    # lengthened by a board is often mattress-sized once its edges are seen), and the
    # edges' support ranks the passing candidates.
    centre_k = origin + ((u0 + u1) / 2)[..., None] * eu + ((v0 + v1) / 2)[..., None] * ev
    half_k = torch.stack([(u1 - u0) / 2, (v1 - v0) / 2], -1)
    # Not measured: duplicates, empty regions and rectangles that even the wide pass (each
    # edge moved by up to its reach) cannot bring to a mattress's size.
    grow = 2 * edges_mod.WIDE_PASS[0] + opt["limits"]["size_tol"]
    (wlo, whi), (llo, lhi) = opt["limits"]["width"], opt["limits"]["length"]
    need = (((flags & rect_mod.FLAG_EMPTY) == 0) & (chk["width"] <= whi + grow)
            & (chk["width"] >= wlo - grow) & (chk["length"] <= lhi + grow)
            & (chk["length"] >= llo - grow))
    ref_all = edges_mod.refine_some(need, depth_m, K, n, lv, sg, centre_k, eu, ev, half_k,
                                    floor)
    # An end run onto furniture standing against it, cut back where the raw pixels show
    # the mattress's end at the furniture's face (bedfit_furniture).
    ref_all, rect, cut = furniture_mod.measure_cuts(
        need, furniture_mod.proposals(fine, rect, opt["limits"]), ref_all, rect, depth_m, K,
        n, lv, sg, (origin, eu, ev), floor)
    ref_all, rect, inferred, ends = shadow_mod.shadow_ends(
        need, flags, ref_all, fine, rect, centre, phi, lv, (origin, eu, ev), opt["limits"])
    ref_all, ranged = range_mod.range_ends(shadow_mod.too_short(need, flags, ref_all, opt[
        "limits"]) & ~inferred, ref_all, flat, vflat)
    hu, hv = ref_all["half"][..., 0:1, None], ref_all["half"][..., 1:2, None]
    sign_u = u0.new_tensor([-1.0, 1.0, 1.0, -1.0])[:, None]
    sign_v = u0.new_tensor([-1.0, -1.0, 1.0, 1.0])[:, None]
    corners = (ref_all["centre"][:, :, None] + sign_u * hu * ref_all["eu"][:, :, None]
               + sign_v * hv * ref_all["ev"][:, :, None])  # [B,KF,4,3]
    width_k, length_k = 2 * ref_all["half"].amin(-1), 2 * ref_all["half"].amax(-1)
    flags = (flags & ~rect_mod.FLAG_SIZE) | checks_mod.size_flags(width_k, length_k,
                                                                opt["limits"])
    support_k = ref_all["support"].mean(-1)
    # Where every edge shows its step from the surface down to free space on the raw
    # pixels, the surface is raised, no back stands along its side and nothing hides its
    # edges (the grid's checks can be misled by a body along a side or a high flat top
    # beside the bed).
    seen_all = ref_all["support"].amin(-1) >= 0.3
    flags = torch.where(seen_all, flags & ~(rect_mod.FLAG_OCCLUDED | rect_mod.FLAG_RAISED
                                            | rect_mod.FLAG_SOFA), flags)
    flags = flags | checks_mod.view_flags(corners, K, valid, stride, ranged)
    # Choose: passing candidates by fill (then edge support, flatness; those with a far end
    # assumed, bedfit_range, after the others); else the most mattress-like.
    good = flags == 0
    serious = (flags & (rect_mod.FLAG_SIZE | rect_mod.FLAG_EMPTY)) > 0
    other = (flags & ~(rect_mod.FLAG_VIEW | rect_mod.FLAG_OCCLUDED | rect_mod.FLAG_SIZE
                       | rect_mod.FLAG_EMPTY)) > 0
    partial = ((flags & rect_mod.FLAG_VIEW) > 0) & ((flags & (
        rect_mod.FLAG_RAISED | rect_mod.FLAG_EMPTY)) == 0)
    # A passing rectangle lying on another (a body under a blanket) comes after it.
    on_other = checks_mod.stacked(good, lv, ref_all["centre"], ref_all["eu"], ref_all["ev"],
                                  ref_all["half"])
    rank = torch.where(good, 10.0 + chk["fill"] + 0.1 * chk["flat"] + 0.5 * support_k
                       - 1.0 * ranged - 2.0 * on_other,
                       -2.0 * serious - 1.0 * other + 0.01 * chk["fill"] + 2.5 * partial)
    if opt["debug"] is not None:
        opt["debug"].update(levels=levels, grid=grid, comps=comps, coarse=coarse, sel=sel,
                            fine=fine, rect=rect, checks=chk, flags=flags, n=n, e1=e1, e2=e2,
                            corners=corners, lower=lower, phi=phi, centre=centre)
    best = rank.argmax(1)
    ar = torch.arange(B, device=dev)
    ok = good[ar, best] & found & (n_valid >= 100)
    reason = checks_mod.reason(flags[ar, best], ok, found, n_valid >= 100)
    # The chosen rectangle: plane refit, head end, frame.
    b_rect, b_lv, b_sg = rect[ar, best], lv[ar, best], sg[ar, best]
    b_eu, b_ev, b_origin = eu[ar, best], ev[ar, best], origin[ar, best]
    rel = flat - b_origin[:, None]
    pu, pv = (rel * b_eu[:, None]).sum(-1), (rel * b_ev[:, None]).sum(-1)
    bu0, bu1, bv0, bv1 = b_rect.unbind(-1)
    mu, mv = 0.1 * (bu1 - bu0)[:, None], 0.1 * (bv1 - bv0)[:, None]
    tol = band_tolerance(b_sg)
    use = (vflat & ((d - b_lv[:, None]).abs() <= tol[:, None]) & (pu >= bu0[:, None] + mu)
           & (pu <= bu1[:, None] - mu) & (pv >= bv0[:, None] + mv) & (pv <= bv1[:, None] - mv))
    # [choice] The mattress is taken parallel to the floor: its normal is the up direction
    # (fitted on all horizontal surfaces at once); a least-squares plane of the mattress
    # alone tilts toward a blanket's slopes or a sagging middle. Offset: mean distance.
    w = use.to(d.dtype)
    offset = torch.where(w.sum(1) >= 10, (w * d).sum(1) / w.sum(1).clamp(min=1), b_lv)
    normal = n
    dist = (flat @ normal[:, :, None])[..., 0] + offset[:, None]
    inl = vflat & (dist.abs() <= torch.clamp(2 * b_sg, min=0.01)[:, None])
    inlier_fraction = inl.sum(1) / n_valid.clamp(min=1)
    rms = torch.sqrt((torch.where(inl, dist, 0.0) ** 2).sum(1) / inl.sum(1).clamp(min=1))
    # The chosen rectangle's edges and plane measured again, finely, on the raw pixels.
    ref = edges_mod.refine(depth_m, K, n, ref_all["offset"][ar, best, None], b_sg[:, None],
                           ref_all["centre"][ar, best, None], ref_all["eu"][ar, best, None],
                           ref_all["ev"][ar, best, None], ref_all["half"][ar, best, None],
                           passes=(edges_mod.FINE_PASS,), min_offset=floor[ar, best, None])
    ref = {k: v[:, 0] for k, v in ref.items()}
    ref = boards_mod.out_to_flush(ref, depth_m, K, normal, b_sg, ok, opt["limits"])
    ref = boards_mod.out_to_boards(ref, depth_m, K, normal, b_sg, ok, opt["limits"])
    ref = boards_mod.in_to_boards(ref, depth_m, K, normal, b_sg, ok, opt["limits"])
    ref, ok = shadow_mod.keep_ends(ref, inferred[ar, best] & ok,
                                   tuple(x[ar, best] for x in ends), ok, opt["limits"])
    ranged = ranged[ar, best] & ok
    ref, far_end = range_mod.keep_nominal(ref, ranged)
    reason = torch.where(ok | (reason != OK), reason, NO_MATTRESS)
    if opt["debug"] is not None:
        opt["debug"]["edges"] = ref
    offset, centre3, b_eu, b_ev = ref["offset"], ref["centre"], ref["eu"], ref["ev"]
    du, dv = 2 * ref["half"][:, 0], 2 * ref["half"][:, 1]
    seam = checks_mod.seam(depth_m, K, normal, offset, b_sg, centre3, b_eu, b_ev, ref["half"])
    along = torch.where((du >= dv)[:, None], b_eu, b_ev)
    sign, conf, known, cues, raised = head_end(
        fine["height"][ar, best], fine["maps"][ar, best], fine["seen"][ar, best],
        fine["cell"][ar, best], b_rect, b_sg, opt["head"] == "auto", opt["min_conf"])
    img = checks_mod.project(K, torch.stack([centre3, centre3 + 0.1 * along], 1))
    dpx = img[:, 1] - img[:, 0]
    side = opt["head"] if opt["head"] != "auto" else opt["fallback"]
    want = dpx.new_tensor(_IMAGE_DIRS[side])
    toward = (dpx * want).sum(-1)
    image_sign = torch.where(toward >= 0, 1.0, -1.0)
    across = toward.abs() < 0.5 * dpx.norm(dim=-1)
    if opt["head"] == "auto":
        # [choice] Unsure, the head end goes toward the fallback image side; where the bed
        # runs across that side (the side says nothing), to the classifier's likelier end
        # (on the tuning rooms right for 14 of 16 such fits, the side's arbitrary end 8).
        sign = torch.where(known | across, sign, image_sign)
        sign, conf, known = furniture_mod.foot_end(cut[ar, best], sign, conf, known)
    else:
        sign, conf, known = image_sign, torch.ones_like(conf), torch.ones_like(known)
        reason = torch.where(ok & across, HEAD_ACROSS, reason)
        ok = ok & ~across
    cues = cues * sign[:, None]
    # An edge is seen where its lines step down to free space at it, or where a board or
    # a wall rises right at it (a headboard, a side against the wall); the board is looked
    # for only where the steps alone would leave an edge unseen.
    support = ref["support"]
    unseen = ok & (support.amin(-1) < WEAK_SUPPORT)
    if bool(unseen.any()):  # per frame, so that a fit does not depend on its batch
        board = boards_mod.bounded(depth_m, K, normal, offset, b_sg, centre3, b_eu, b_ev,
                                  ref["half"])
        # An end moved out to a board is inferred, not seen: it keeps its own support.
        board = torch.where(ref["moved"], torch.zeros_like(board), board)
        support = torch.where(unseen[:, None], torch.maximum(support, board), support)
    grazing = checks_mod.grazing(normal, offset, edges_mod.below_band(b_sg), centre3, b_eu,
                                 b_ev, ref["half"])
    rect3 = (depth_m, K, normal, offset, centre3, b_eu, b_ev, ref["half"])
    s_cut, h_cut, beyond_cut = cover_mod.profiles(*rect3)  # lines across the edges, once
    causes = torch.stack([support.amin(-1) < WEAK_SUPPORT, (ref["moved"] & ~far_end).any(-1),
                          seam >= WEAK_SEAM, b_sg >= WEAK_NOISE, chk["unread_ring"][ar, best],
                          boards_mod.board_past(*rect3, flush=ref["flush"]),
                          grazing.amax(-1) >= WEAK_GRAZING, ranged,
                          *cover_mod.causes(h_cut, beyond_cut, ref["half"]),
                          checks_mod.blind_edges(s_cut, h_cut),
                          ref["held"] | ref_all["held"][ar, best], raised > 0], -1)
    # (causes in WEAK_CAUSES' order)
    causes = incline_mod.explained(causes, support, ref["half"], raised)
    centre3, half = checks_mod.pull_in(ref, grazing * ok[:, None])
    y = sign[:, None] * along
    T = _frame(centre3, y, normal)
    x_ax, y_ax = T[:, :3, 0], T[:, :3, 1]
    width_, length_ = 2 * half.amin(-1), 2 * half.amax(-1)
    hx, hy = (width_ / 2)[:, None], (length_ / 2)[:, None]
    ordered = torch.stack([centre3 - hx * x_ax + hy * y_ax, centre3 + hx * x_ax + hy * y_ax,
                           centre3 + hx * x_ax - hy * y_ax, centre3 - hx * x_ax - hy * y_ax], 1)
    return BedFits(
        ok=ok, reason=reason, T_cam_bed=T, corners=ordered,
        size=torch.stack([width_, length_], -1), normal=normal, offset=offset,
        head_confidence=conf, head_known=known, head_cues=cues, raised_deg=raised,
        inlier_fraction=inlier_fraction, rms=rms, noise=b_sg, fill=chk["fill"][ar, best],
        edge_support=support, seam=seam, weak_causes=causes, weak=ok & causes.any(-1),
        cand_corners=corners, cand_size=torch.stack([width_k, length_k], -1),
        cand_distance=lv, cand_flags=flags, chosen=best, unread=unread, farthest=farthest)


def _frame(centre: Tensor, y_axis: Tensor, normal: Tensor) -> Tensor:
    """T_cam_bed [B,4,4] with the label point (BED_CENTRE_LABEL, 0) at ``centre``, label y
    along ``y_axis`` (made ⟂ normal) and z along ``normal``."""
    y = y_axis - (y_axis * normal).sum(-1, keepdim=True) * normal
    y = y / y.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    x = torch.linalg.cross(y, normal)
    rot = torch.stack([x, y, normal], -1)
    T = torch.eye(4, device=centre.device, dtype=centre.dtype).repeat(centre.shape[0], 1, 1)
    T[:, :3, :3] = rot
    label = centre.new_tensor([*BED_CENTRE_LABEL, 0.0])
    T[:, :3, 3] = centre - rot @ label
    return T
