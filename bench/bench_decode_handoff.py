"""What handing decoded batches from a worker process to the server's process would cost, against decoding there.

Decoding a whole vehicle's traffic in worker processes (one per bus or bus group) only pays if what the server's
process spends receiving a batch is well below what it spends reading and decoding the frames itself. This bench
measures both on the demo drive with the demo profile, in batches as the HAL forms them (16 frames: 2 ms of a
saturated bus; and 128):

* in-process: the server's process reads the recording and decodes (``RecordingSource`` as fast as possible,
  ``FrameProcessor.process``): CPU µs per frame;
* hand-off: a worker process reads and decodes, and sends each batch's updates over a ``multiprocessing`` pipe,
  either as the ``SignalUpdate`` list pickled, or compact (signal index, value, timestamp, status code tuples);
  CPU µs per frame of the receiving process (receive and rebuild the ``SignalUpdate`` list) and of the worker.

Prints figures and ratios; no pass/fail.
"""

from __future__ import annotations

import argparse
import multiprocessing
import pickle
import time
from multiprocessing.connection import Connection

from sdv.hal.processor import FrameProcessor, SignalUpdate, Status
from sdv.hal.sources import RecordingSource
from sdv.hal.vehicle import load_vehicle
from sdv.resources import demo_profile, demo_recording

_STATUSES = list(Status)


def _batches(batch: int, frames: int) -> tuple[FrameProcessor, RecordingSource, int]:
    vehicle = load_vehicle(demo_profile())
    name = next(iter(vehicle.buses))
    source = RecordingSource(name, demo_recording(), realtime=False, loop=True, batch_size=batch)
    return FrameProcessor(vehicle), source, frames


def in_process(batch: int, frames: int) -> float:
    """CPU µs per frame of reading and decoding in this process."""
    processor, source, total = _batches(batch, frames)
    done = 0
    started = time.process_time()
    while done < total:
        received = source.receive(0.0)
        processor.process(0, received)
        done += len(received)
    used = time.process_time() - started
    source.close()
    return used / done * 1e6


def worker(batch: int, frames: int, compact: bool, conn: Connection) -> None:
    """Read and decode, sending every batch's updates; then the CPU µs per frame this process used."""
    processor, source, total = _batches(batch, frames)
    index = {path: number for number, path in enumerate(processor.vehicle.signals)}
    done = 0
    started = time.process_time()
    while done < total:
        received = source.receive(0.0)
        updates = processor.process(0, received)
        done += len(received)
        payload: object = updates
        if compact:  # the signal's index instead of its path, the status's index instead of the enum
            payload = [(index[u[0]], u[1], u[2], _STATUSES.index(u[3])) for u in updates]
        conn.send_bytes(pickle.dumps((len(received), payload), pickle.HIGHEST_PROTOCOL))
    conn.send_bytes(pickle.dumps((0, (time.process_time() - started) / done * 1e6)))
    source.close()


def handed_off(batch: int, frames: int, compact: bool) -> tuple[float, float]:
    """CPU µs per frame of the receiving process and of the worker."""
    paths = list(load_vehicle(demo_profile()).signals)
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=worker, args=(batch, frames, compact, sender))
    child.start()
    sender.close()
    new = tuple.__new__
    done = 0
    first = receiver.recv_bytes()  # the worker has started: its start-up is not counted
    started = time.process_time()
    message = first
    while True:
        count, payload = pickle.loads(message)
        if count == 0:
            worker_us = payload
            break
        done += count
        if compact:
            [new(SignalUpdate, (paths[u[0]], u[1], u[2], _STATUSES[u[3]])) for u in payload]
        message = receiver.recv_bytes()
    used = time.process_time() - started
    child.join()
    return used / done * 1e6, worker_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000, help="frames per measurement")
    args = parser.parse_args()
    print("decoding in the server's process against handing decoded batches over from a worker process")
    print(f"{'batch':>5} {'in-process':>10} {'hand-off':>9} {'receiver':>9} {'ratio':>6} {'worker':>7}")
    for batch in (16, 128):
        local = in_process(batch, args.frames)
        for compact in (False, True):
            receiving, working = handed_off(batch, args.frames, compact)
            kind = "compact" if compact else "pickled"
            print(
                f"{batch:>5} {local:8.2f}µs {kind:>9} {receiving:7.2f}µs {receiving / local:6.2f} "
                f"{working:5.2f}µs",
                flush=True,
            )
    print("(µs of CPU per frame; ratio: the receiving process's cost per frame to decoding in it)")


if __name__ == "__main__":
    main()
