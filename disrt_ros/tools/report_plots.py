"""The pictures of ``disrt-report`` (OpenCV, no plotting library): the posture timeline with
turns, alerts and the time since the last turn, and the pressure per region over the night.

Both share the time axis: ``WIDTH`` pixels, labels in the left ``MARGIN``, the night from
its first to its last frame, ticks in elapsed h:mm (m:ss for less than an hour).
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np

from disrt_ros.pressure_view import SCALE_KPA, legend

WIDTH, MARGIN, RIGHT = 1200, 130, 20
FONT = cv2.FONT_HERSHEY_SIMPLEX
#: colour of each timeline label (BGR)
COLOURS = {"supine": (90, 180, 60), "left": (200, 120, 40), "right": (40, 140, 240),
           "prone": (160, 160, 30), "unknown": (150, 150, 150), "out_of_bed": (45, 45, 45),
           "sitting_on_edge": (40, 200, 220)}
ALERT_COLOURS = {"turn_due": (40, 40, 220), "pressure": (200, 0, 200)}
BACKGROUND, INK, GRID = (250, 250, 250), (30, 30, 30), (215, 215, 215)


def _clock(seconds: float, hours: bool) -> str:
    """Elapsed time as h:mm (``hours``) or m:ss."""
    seconds = round(float(seconds))
    if hours:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


class Axis:
    """Elapsed seconds -> x pixel over [start, end]."""

    def __init__(self, start: float, end: float) -> None:
        self.start, self.span = start, max(end - start, 1e-6)
        self.width = WIDTH - MARGIN - RIGHT

    def x(self, t: float) -> int:
        return round(MARGIN + float(t - self.start) / self.span * self.width)

    def ticks(self, image: np.ndarray, top: int, bottom: int) -> None:
        """Vertical grid lines and elapsed-time labels under ``bottom``."""
        steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800)
        step = next((s for s in steps if self.span / s <= 10), steps[-1])
        t = 0.0
        while t <= self.span + 1e-6:
            x = self.x(self.start + t)
            cv2.line(image, (x, top), (x, bottom), GRID, 1)
            cv2.putText(image, _clock(t, self.span >= 3600), (x - 12, bottom + 14), FONT, 0.4,
                        INK, 1, cv2.LINE_AA)
            t += step


def _label(image: np.ndarray, text: str, y: int) -> None:
    cv2.putText(image, text, (6, y), FONT, 0.45, INK, 1, cv2.LINE_AA)


def timeline_image(night, title: str) -> np.ndarray:
    """bgr8: the confirmed state over the night (coloured bands, white ticks at turns), the
    alerts while active, and the minutes since the last turn against the turn interval.
    ``night`` is a :class:`disrt_ros.tools.report.Night`."""
    axis = Axis(night.start, night.end)
    band, alerts_top, curve_top, curve_h = (40, 80), 96, 132, 110
    height = curve_top + curve_h + 60
    image = np.full((height, WIDTH, 3), BACKGROUND, np.uint8)
    cv2.putText(image, title, (6, 22), FONT, 0.55, INK, 1, cv2.LINE_AA)
    axis.ticks(image, band[0], curve_top + curve_h)
    _label(image, "posture", band[0] + 24)
    for start, end, label in night.monitor.timeline:
        x0, x1 = axis.x(start), max(axis.x(end), axis.x(start) + 1)
        cv2.rectangle(image, (x0, band[0]), (x1, band[1]), COLOURS.get(label, (0, 0, 0)), -1)
    for event in night.events:
        if event.kind == "turn":
            x = axis.x(event.stamp)
            cv2.line(image, (x, band[0] - 4), (x, band[1] + 4), (255, 255, 255), 2)
            cv2.line(image, (x, band[0] - 4), (x, band[1] + 4), INK, 1)
    _label(image, "alerts", alerts_top + 14)
    for alert in night.alerts:
        end = alert.cleared if alert.cleared is not None else night.end
        colour = ALERT_COLOURS.get(alert.kind, (0, 0, 200))
        y = alerts_top + (2 if alert.kind == "turn_due" else 12)  # turns above, pressure below
        cv2.rectangle(image, (axis.x(alert.raised), y),
                      (max(axis.x(end), axis.x(alert.raised) + 2), y + 8), colour, -1)
    _label(image, "min since", curve_top + 40)
    _label(image, "last turn", curve_top + 58)
    limit = night.settings.turn_interval_s / 60
    top = max(limit * 1.25, np.nanmax(night.since_turn, initial=0.0) * 1.05, 1e-3)
    to_y = lambda m: round(curve_top + curve_h - float(m) / top * curve_h)  # noqa: E731
    cv2.line(image, (MARGIN, to_y(limit)), (WIDTH - RIGHT, to_y(limit)),
             ALERT_COLOURS["turn_due"], 1, cv2.LINE_AA)
    cv2.putText(image, f"turn interval {limit:g} min", (MARGIN + 4, to_y(limit) - 4), FONT,
                0.4, ALERT_COLOURS["turn_due"], 1, cv2.LINE_AA)
    points = [(axis.x(t), to_y(m)) for t, m in zip(night.stamps, night.since_turn)
              if np.isfinite(m)]
    for a, b in itertools.pairwise(points):
        if b[0] - a[0] <= 3 or abs(b[1] - a[1]) < curve_h // 3:
            cv2.line(image, a, b, INK, 1, cv2.LINE_AA)
    x = MARGIN
    for name, colour in COLOURS.items():
        cv2.rectangle(image, (x, height - 18), (x + 12, height - 6), colour, -1)
        cv2.putText(image, name, (x + 16, height - 7), FONT, 0.4, INK, 1, cv2.LINE_AA)
        x += 30 + cv2.getTextSize(name, FONT, 0.4, 1)[0][0]
    for kind, colour in ALERT_COLOURS.items():
        cv2.rectangle(image, (x, height - 18), (x + 12, height - 6), colour, -1)
        cv2.putText(image, f"alert: {kind}", (x + 16, height - 7), FONT, 0.4, INK, 1,
                    cv2.LINE_AA)
        x += 30 + cv2.getTextSize(f"alert: {kind}", FONT, 0.4, 1)[0][0]
    return image


def regions_image(night, regions: tuple[str, ...], title: str, bins: int = 300) -> np.ndarray:
    """bgr8: the peak skin pressure of each region over the night (rows), the highest in
    each time bin, on the fixed colour scale of :mod:`disrt_ros.pressure_view`; black where
    no pressure was measured (out of bed, pressure off)."""
    axis = Axis(night.start, night.end)
    row, top = 18, 34
    height = top + row * len(regions) + 26 + 28
    image = np.full((height, WIDTH, 3), BACKGROUND, np.uint8)
    cv2.putText(image, title, (6, 22), FONT, 0.55, INK, 1, cv2.LINE_AA)
    peaks = night.peaks  # [N, R], nan = none
    edges = np.linspace(night.start, night.end, bins + 1)
    which = np.clip(np.searchsorted(edges, night.stamps, side="right") - 1, 0, bins - 1)
    grid = np.full((len(regions), bins), np.nan)
    for b in np.unique(which):
        chunk = peaks[which == b]
        if np.isfinite(chunk).any():
            grid[:, b] = np.nanmax(np.where(np.isfinite(chunk), chunk, -np.inf), 0)
    grid[~np.isfinite(grid)] = np.nan
    level = np.clip(np.nan_to_num(grid, nan=0.0) / SCALE_KPA * 255, 0, 255).astype(np.uint8)
    colours = cv2.applyColorMap(level, cv2.COLORMAP_TURBO)
    colours[~np.isfinite(grid)] = 0
    strip = cv2.resize(colours, (axis.width, row * len(regions)),
                       interpolation=cv2.INTER_NEAREST)
    image[top:top + strip.shape[0], MARGIN:MARGIN + axis.width] = strip
    for r, name in enumerate(regions):
        _label(image, name.replace("_", " "), top + r * row + 13)
    axis.ticks(image, top + strip.shape[0], top + strip.shape[0])
    bar = legend(300)
    y = height - bar.shape[0] - 2
    image[y:y + bar.shape[0], MARGIN:MARGIN + 300] = bar
    cv2.putText(image, "peak skin pressure per region", (MARGIN + 310, y + 16), FONT, 0.4,
                INK, 1, cv2.LINE_AA)
    return image
