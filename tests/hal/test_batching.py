"""Sources hand over frames in batches of a few ms: what arrives within the window after the first frame."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import can
import pytest

from sdv.hal.sources import BusSource, RecordingSource

from ..waiting import DEADLINE_S


def _recording(tmp_path: Path, frames: int, spacing_s: float) -> Path:
    path = tmp_path / "paced.log"
    path.write_text(
        "".join(f"({1700000000 + index * spacing_s:.6f}) can0 123#{index:02X}\n" for index in range(frames))
    )
    return path


def test_a_real_time_replay_batches_the_frames_due_within_the_window(tmp_path: Path) -> None:
    source = RecordingSource("bus", _recording(tmp_path, 10, 0.001), batch_window_s=DEADLINE_S)
    try:
        frames = source.receive(DEADLINE_S)
    finally:
        source.close()
    assert [bytes(frame.data)[0] for frame in frames] == list(range(10))
    steps = [later.timestamp - earlier.timestamp for earlier, later in itertools.pairwise(frames)]
    assert all(abs(step - 0.001) < 1e-6 for step in steps)  # each stamped at its recorded pace


def test_a_real_time_batch_is_handed_over_once_its_last_frame_is_due_never_earlier(tmp_path: Path) -> None:
    # Ten frames 20 ms apart, a window that takes them all: one wait for the batch, none handed before its time.
    source = RecordingSource("bus", _recording(tmp_path, 10, 0.02), batch_window_s=DEADLINE_S)
    try:
        frames = source.receive(DEADLINE_S)
        handed_at = time.time()
    finally:
        source.close()
    assert len(frames) == 10
    assert handed_at >= frames[-1].timestamp
    assert frames[-1].timestamp - frames[0].timestamp == pytest.approx(0.18, abs=1e-6)


def test_a_live_bus_batch_takes_frames_arriving_within_the_window(tmp_path: Path) -> None:
    channel = f"batching-{tmp_path.name}"
    bus = can.Bus(interface="virtual", channel=channel)
    sender = can.Bus(interface="virtual", channel=channel)
    source = BusSource("bus", bus, batch_window_s=DEADLINE_S, batch_size=3)
    received: list[can.Message] = []
    reader = threading.Thread(target=lambda: received.extend(source.receive(DEADLINE_S)))
    reader.start()
    try:
        for index in range(3):  # sent one by one, the reader already waiting for the first
            sender.send(can.Message(arbitration_id=0x123, is_extended_id=False, data=[index]))
        reader.join(DEADLINE_S)
    finally:
        source.close()
        sender.shutdown()
    assert [bytes(frame.data)[0] for frame in received] == [0, 1, 2]
