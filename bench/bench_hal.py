"""HAL replay throughput against a bare cantools decode loop, measured in the same process.

For each workload the same in-memory frames go through

* the baseline: ``db.decode_message(frame_id, data)`` for every frame (cantools, default options), and
* the HAL: :class:`sdv.hal.processor.FrameProcessor` in batches of 512 frames (routing, decoding, E2E,
  transforms, datatype conversion, change detection, update batches handed to a consumer).

Workloads: the bundled demo drive with the demo profile (every signal mapped, E2E on three messages), and a
Toyota/Honda mix of opendbc files with a profile mapping every signal (written by ``sdv profile init``), fed with
synthetic traffic in which each frame changes one byte of its message's previous payload or none.

Each side runs ``--repeat`` times; the best run counts (the machine is shared and noisy). Prints frames/s and the
ratio HAL/baseline (above 1 means the HAL is faster).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import can
import yaml

from sdv.cli.hal_commands import starting_profile
from sdv.hal.dbc import load_dbc
from sdv.hal.processor import FrameProcessor
from sdv.hal.sources import read_recording
from sdv.hal.vehicle import VehicleDefinition, load_vehicle
from sdv.resources import demo_profile, demo_recording

BATCH = 512


def best_rate(run: Callable[[], None], frames: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return frames / best


def measure(
    name: str, vehicle: VehicleDefinition, database: object, frames: Sequence[can.Message], repeat: int
) -> None:
    decode_message = database.decode_message  # type: ignore[attr-defined]

    def baseline() -> None:
        for frame in frames:
            try:
                decode_message(frame.arbitration_id, frame.data)
            except Exception:
                continue

    delivered: list[int] = []

    def hal() -> None:
        processor = FrameProcessor(vehicle)  # fresh state: every run decodes from scratch
        consume = delivered.append
        for start in range(0, len(frames), BATCH):
            batch = frames[start : start + BATCH]
            updates = processor.process(0, batch)
            updates.extend(processor.check_freshness(batch[-1].timestamp))
            consume(len(updates))

    base_rate = best_rate(baseline, len(frames), repeat)
    delivered.clear()
    hal_rate = best_rate(hal, len(frames), repeat)
    updates_per_run = sum(delivered) // repeat
    print(
        f"{name:34} frames {len(frames):>7}  cantools decode_message {base_rate:>10,.0f} frames/s   "
        f"HAL {hal_rate:>10,.0f} frames/s ({updates_per_run:,} updates)   ratio {hal_rate / base_rate:5.2f}"
    )


def demo_workload(repeat: int) -> None:
    vehicle = load_vehicle(demo_profile())
    frames = list(read_recording(demo_recording()))
    database = next(iter(vehicle.buses.values())).dbcs[0].database
    measure("demo drive (demo profile)", vehicle, database, frames, repeat)


def opendbc_workload(repeat: int, count: int) -> None:
    import opendbc
    from opendbc.dbc.generator.generator import generate_all

    generated = generate_all()
    directory = Path(tempfile.mkdtemp(prefix="sdv-bench-"))
    names = ["toyota_nodsu_pt_generated", "honda_civic_touring_2016_can_generated"]
    rng = random.Random(7)
    for name in names:
        text = generated.get(name)
        if text is None:
            text = (Path(opendbc.__file__).parent / "dbc" / f"{name}.dbc").read_text()
        dbc_path = directory / f"{name}.dbc"
        dbc_path.write_text(text)
        profile = starting_profile(dbc_path, "can0", "virtual", "bench")
        profile_path = directory / f"{name}.yaml"
        profile_path.write_text(yaml.safe_dump(profile, sort_keys=False))
        vehicle = load_vehicle(profile_path)
        database = load_dbc(dbc_path).database
        messages = [m for m in database.messages if m.length <= 8]
        payloads = {m.frame_id: bytearray(rng.getrandbits(8) for _ in range(m.length)) for m in messages}
        frames = []
        for index in range(count):
            message = messages[index % len(messages)]
            payload = payloads[message.frame_id]
            if rng.random() < 0.7:
                byte = rng.randrange(message.length)
                payload[byte] = (payload[byte] + 1) & 0xFF
            frames.append(
                can.Message(
                    timestamp=index * 0.0001,
                    arbitration_id=message.frame_id,
                    is_extended_id=message.is_extended_frame,
                    data=bytes(payload),
                )
            )
        measure(f"opendbc {name} (every signal)", vehicle, database, frames, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--frames", type=int, default=100_000, help="synthetic frames per opendbc workload")
    args = parser.parse_args()
    demo_workload(args.repeat)
    opendbc_workload(args.repeat, args.frames)


if __name__ == "__main__":
    main()
