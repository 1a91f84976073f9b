"""The webcam's processing resolution: the largest that keeps a target frame rate.

Styling time grows with the number of pixels, so after each frame the governor estimates the
seconds per pixel (smoothed) and picks the longer side whose frames fit the frame budget. It
shrinks from the next frame on when frames get slow, grows by at most a quarter per frame (no
overshoot), moves in steps of 32 px, never exceeds the user's ceiling or the camera's own size,
and starts over when the choice (style, network, painting) changes; the first frame of a choice
is not measured (it pays for loading and warming the network).
"""
from __future__ import annotations

import dataclasses
import math

STEP = 32
MIN_SIDE = 128
START_SIDE = 256
MAX_GROWTH = 1.25
#: Share of the frame budget spent on styling; the rest goes to decoding, transport and the browser.
HEADROOM = 0.85
SMOOTHING = 0.3   # weight of the newest frame in the per-pixel cost


@dataclasses.dataclass
class ResolutionGovernor:
    """Chooses the processing side of each webcam frame for ``target_fps`` frames per second."""

    target_fps: float
    side: int = 0              # the side of the next frame (0: not started)
    seconds_per_pixel: float = 0.0
    choice: str = ""           # the choice the cost was measured for
    measured: int = 0          # frames measured for this choice

    def next_side(self, ceiling: int, choice: str) -> int:
        """The longer side to process the next frame at, at most ``ceiling``."""
        if choice != self.choice:
            self.choice, self.seconds_per_pixel, self.measured = choice, 0.0, 0
            self.side = 0
        if not self.side:
            self.side = START_SIDE
        self.side = max(min(self.side, ceiling), min(MIN_SIDE, ceiling))
        return self.side

    def record(self, seconds: float, height: int, width: int, camera_side: int, ceiling: int) -> None:
        """Learn from a frame processed at ``height`` x ``width`` in ``seconds``; ``camera_side`` is
        the longer side of the camera's frame (the largest side worth processing)."""
        self.measured += 1
        if self.measured == 1:
            return   # the first frame of a choice pays for loading and warming the network
        pixels = max(1, height * width)
        cost = seconds / pixels
        self.seconds_per_pixel = cost if self.seconds_per_pixel == 0 else \
            (1 - SMOOTHING) * self.seconds_per_pixel + SMOOTHING * cost
        budget = HEADROOM / self.target_fps
        ideal = max(height, width) * math.sqrt(budget / (self.seconds_per_pixel * pixels))
        wanted = ideal if ideal < self.side else min(ideal, self.side * MAX_GROWTH)
        wanted = min(wanted, ceiling, max(camera_side, MIN_SIDE))
        self.side = max(min(MIN_SIDE, ceiling), int(wanted) // STEP * STEP)   # steps of 32: no jitter
