"""What makes an automatic bed fit weak, in words for a user (``BedFit.weak_because``, the
node's WARN, ``disrt-fit-bed``). Pure Python: :mod:`bedfit` imports it without torch."""

from __future__ import annotations


def weak_because(fits, i: int) -> tuple[str, ...]:
    """Frame ``i``'s ``weak_causes`` (``bedfit_result.WEAK_CAUSES``) in words."""
    unseen_edge, inferred_end, seam, noise, unread, past, grazing, beyond, board, dome, \
        blind, covered, raised = (bool(c) for c in fits.weak_causes[i])
    out = []
    if unseen_edge:
        from disrt_core.geometry.bedfit_result import WEAK_SUPPORT

        unseen = int((fits.edge_support[i] < WEAK_SUPPORT).sum())
        out.append(f"{unseen} edge{'s' if unseen > 1 else ''} hardly seen, with no step "
                   "down from the mattress and no board at it: bedding over the edge, or a "
                   "surface of the same height beside it")
    if inferred_end:
        out.append("an end placed at a board, not seen: hidden by pillows or bedding, or "
                   "in the board's shadow from the camera")
    if seam:
        out.append("a gap runs along the rectangle: two surfaces of the same height "
                   "may have been taken as one")
    if noise:
        out.append(f"the depth at the mattress is noisy, σ {100 * float(fits.noise[i]):.1f} "
                   "cm, as from a stereo camera far from the bed")
    if unread:
        out.append("the floor round the bed hardly reads (dark, or beyond the range), so "
                   "that the mattress stands above it is not seen")
    if past:
        out.append("an end reaches past a board standing across it: the mattress may end "
                   "before the board")
    if grazing:
        out.append("an edge is seen at a grazing angle from beyond it: the mattress's side "
                   "face reads as its top; the edge was pulled in by most of that, but may "
                   "still lie out")
    if beyond:
        from disrt_core.geometry.bedfit_range import NOMINAL

        out.append("the far end lies beyond the camera's range and reads nothing: it is put "
                   f"{NOMINAL:.1f} m from the near end, a usual mattress length, not measured")
    if board:
        out.append("a low ridge runs across an end just inside it, as a footboard's top: the "
                   "mattress may end several cm before the fitted end, at the board")
    if dome:
        out.append("the bedding slopes down to both long sides and nowhere shows the "
                   "mattress top: the fit lies on the bedding, several cm above the mattress, "
                   "and its sides may lie some cm inside the mattress's")
    if blind:
        out.append("the last few cm inside an edge read nothing (a depth edge the camera "
                   "leaves blank, or a wall or board just beyond it): the edge may lie up to "
                   "5 cm nearer the middle")
    if covered:
        out.append("bedding covers the edges and the mattress top shows only away from them "
                   "(the fit's height is taken there): the edges were measured on the "
                   "bedding and may lie some cm off")
    if raised:
        out.append(f"the mattress rises toward an end in a ramp of about "
                   f"{float(fits.raised_deg[i]):.0f}° (an adjustable bed's head section "
                   "raised): the model is trained on flat beds, so the upper body's pose "
                   "is less sure; lower the section to check the fit")
    return tuple(out)
