"""Motion estimation (fst.motion) and motion-compensated stabilization (fst.temporal) on known motion."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fst.motion import box_filter, estimate_flow, resize_flow, warp
from fst.temporal import (MotionTracker, Stabilizer, histogram_distance, shifted_copy, stability_loss, temporal_blend,
                          warping_error)
from video_clips import panning_frames, textured_frame

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tensor(frame: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frame).permute(2, 0, 1).unsqueeze(0).float() / 255


@pytest.mark.parametrize("step", [(3, -2), (0, 1), (6, 4)])
def test_flow_recovers_a_known_translation(step):
    previous, current = panning_frames(2, 96, 128, step=step)
    flow = estimate_flow(tensor(previous), tensor(current))
    inner = flow[0, :, 12:-12, 12:-12]
    # previous(x + flow) = current(x): the camera moved by +step, so flow = +step
    assert inner[0].median() == pytest.approx(step[0], abs=0.2)
    assert inner[1].median() == pytest.approx(step[1], abs=0.2)
    warped, inside = warp(tensor(previous), flow)
    error = (warped - tensor(current)).abs()[..., 12:-12, 12:-12].mean()
    assert error < 0.5 * (tensor(previous) - tensor(current)).abs()[..., 12:-12, 12:-12].mean()


def test_warp_marks_pixels_that_come_from_outside():
    image = torch.rand(1, 3, 8, 10)
    flow = torch.zeros(1, 2, 8, 10)
    flow[:, 0] = 3.0                       # sample 3 px to the right
    warped, inside = warp(image, flow)
    assert torch.allclose(warped[..., :7], image[..., 3:10], atol=1e-5)
    assert inside[0, 0, :, :7].all() and not inside[0, 0, :, 8:].any()


def test_resize_flow_scales_the_vectors():
    flow = torch.ones(1, 2, 10, 20)
    flow[:, 1] = -2.0
    bigger = resize_flow(flow, (30, 40))
    assert bigger.shape == (1, 2, 30, 40)
    assert torch.allclose(bigger[:, 0], torch.full((1, 30, 40), 2.0))
    assert torch.allclose(bigger[:, 1], torch.full((1, 30, 40), -6.0))


def test_box_filter_is_a_window_mean():
    x = torch.rand(2, 3, 12, 15)
    expected = F.avg_pool2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    assert torch.allclose(box_filter(x, 2), expected, atol=1e-5)


def test_temporal_blend_with_per_pixel_weights_and_float_frames():
    current, previous = np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 200, np.uint8)
    weights = np.array([[0.0, 0.5], [1.0, 0.25]], np.float32)
    mixed = temporal_blend(current, previous, weights)
    assert mixed.dtype == np.uint8 and mixed[..., 0].tolist() == [[0, 100], [200, 50]]
    colours = temporal_blend(np.zeros((2, 2, 2), np.float32), np.full((2, 2, 2), -10.0, np.float32), weights)
    assert colours.dtype == np.float32 and colours[0, 1, 0] == pytest.approx(-5.0)
    with pytest.raises(ValueError, match="per-pixel alpha"):
        temporal_blend(current, previous, np.full((2, 2), 1.5, np.float32))


def test_histogram_distance_separates_shots_from_motion():
    first, moved = panning_frames(2, 48, 64, step=(3, 1))
    other_shot = (textured_frame(48, 64, seed=5) * 0.35).astype(np.uint8)
    assert histogram_distance(first, first) == 0.0
    assert histogram_distance(first, moved) < 0.15
    assert histogram_distance(first, other_shot) > 0.6


def _flickering(frames: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """Stand-in for frame-by-frame styling: every frame gets its own texture noise."""
    rng = np.random.default_rng(seed)
    return [np.clip(f + rng.normal(0, 12, f.shape), 0, 255).astype(np.uint8) for f in frames]


def test_stabilizer_halves_the_warping_error_on_a_pan():
    frames = panning_frames(10, 72, 96, step=(2, 1))
    outputs = _flickering(frames)
    tracker, stabilizer = MotionTracker(), Stabilizer(0.6)
    stable = [stabilizer(output, tracker.track(frame)) for frame, output in zip(frames, outputs)]
    true_flow = np.broadcast_to(np.array([2.0, 1.0], np.float32), (72, 96, 2))

    def error(sequence):
        return np.mean([warping_error(a, b, true_flow) for a, b in zip(sequence, sequence[1:])])

    assert error(stable) < 0.5 * error(outputs)
    # no drift away from the frames: the stabilized output still follows each frame
    assert np.abs(stable[-1].astype(float) - frames[-1]).mean() < np.abs(outputs[-1].astype(float) - frames[-1]).mean()
    assert tracker.cuts == 0


def test_occluded_pixels_are_not_blended():
    frames = panning_frames(2, 64, 64, step=(1, 0))
    frames[1] = frames[1].copy()
    frames[1][20:44, 20:44] = (255, 0, 255)          # an object appears
    tracker, stabilizer = MotionTracker(), Stabilizer(0.8)
    first = stabilizer(frames[0], tracker.track(frames[0]))
    motion = tracker.track(frames[1])
    assert motion is not None
    second = stabilizer(frames[1], motion)
    confidence = motion.at(first.shape[:2])[1][0, 0]
    assert confidence[26:38, 26:38].max() < 0.05       # the new object is not explained by motion
    assert confidence[:, 50:60].mean() > 0.8            # the background is
    assert np.abs(second[26:38, 26:38].astype(int) - frames[1][26:38, 26:38]).max() <= 2   # no ghost of the old frame


def test_cuts_restart_the_blend():
    shot_a = panning_frames(3, 48, 64, step=(1, 0), seed=1)
    shot_b = panning_frames(3, 48, 64, step=(1, 0), seed=2)      # same kind of texture: similar histograms
    tracker, stabilizer = MotionTracker(), Stabilizer(0.9)
    results = [stabilizer(frame, tracker.track(frame)) for frame in shot_a + shot_b]
    assert tracker.cuts == 1                                     # found by the failed motion, not the histogram
    assert np.array_equal(results[3], shot_b[0])                 # nothing of shot A in shot B
    dark = (shot_b[1] * 0.3).astype(np.uint8)
    assert tracker.track(dark) is None and tracker.cuts == 2     # found by the histogram


def test_tracker_and_stabilizer_check_their_settings():
    with pytest.raises(ValueError, match="alpha"):
        Stabilizer(1.0)
    with pytest.raises(ValueError, match="cut_threshold"):
        MotionTracker(cut_threshold=0)
    with pytest.raises(ValueError, match="side"):
        MotionTracker(side=4)


# --------------------------------------------------------------------------- training-time stability


def test_stability_loss_measures_how_outputs_follow_a_shift():
    content = tensor(textured_frame(32, 40))
    torch.manual_seed(0)
    shifts = set()
    for _ in range(20):
        moved, shift = shifted_copy(content, max_shift=3, noise=0.0)
        assert torch.equal(moved, torch.roll(content, shifts=shift, dims=(-2, -1)))
        shifts.add(shift)
    assert len(shifts) > 5 and all(abs(dy) <= 3 and abs(dx) <= 3 for dy, dx in shifts)
    noisy, _ = shifted_copy(content, noise=0.05)
    assert noisy.min() >= 0 and noisy.max() <= 1

    shift = (2, -3)
    moved = torch.roll(content, shifts=shift, dims=(-2, -1))

    def loss_of(network):
        return float(stability_loss(network(content), network(moved), shift))

    assert loss_of(lambda x: x * 0.5 + 0.1) == pytest.approx(0.0, abs=1e-10)      # follows any shift
    ramp = torch.linspace(0, 1, 40).view(1, 1, 1, 40)
    assert loss_of(lambda x: x * ramp) > 1e-3                                      # paints at fixed places
    with pytest.raises(ValueError, match="max_shift"):
        shifted_copy(content[..., :6, :6], max_shift=3)


@pytest.mark.slow
def test_training_on_the_stability_loss_makes_a_network_steadier():
    from app_helpers import tiny_style

    torch.manual_seed(0)
    model = tiny_style(1).train()
    images = torch.stack([tensor(textured_frame(32, 32, seed=i))[0] for i in range(4)])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

    def step() -> float:
        moved, shift = shifted_copy(images)
        output, moved_output = model(torch.cat((images, moved))).chunk(2)
        loss = stability_loss(output, moved_output, shift)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    first = np.mean([step() for _ in range(3)])
    for _ in range(25):
        step()
    assert np.mean([step() for _ in range(3)]) < 0.7 * first
