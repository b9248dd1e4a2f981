"""``sdv serve`` as a process, fed in real time: CPU per frame, sustained or not, latency to subscribers.

The bench generates a profile of N buses (the demo profile's bus and signals repeated, each bus with its own copy
of the demo DBC and its signals under ``Vehicle.BusN``) and a candump ``-L`` recording of the demo drive's frames
retimed to a fixed rate; each bus replays it in real time and in a loop (a recording source per bus, as a bus
of a vehicle would deliver its frames). ``sdv serve`` runs that profile as a separate process; subscribers run in
another process (``grpc.aio``, ``kuksa.val.v2`` Subscribe of every signal), so that their CPU is not counted as
the server's.

For each offered rate (1 k, 8 k frames/s on one bus; 32 k and 64 k frames/s as 4 and 8 buses of 8 k frames/s)
and each number of subscribers (0, 1, 10), over a short window after a warm-up:

* the server's CPU (all its threads, from ``/proc/PID/stat``) as % of one core and µs per frame offered;
* frames decoded per second (the server's ``Sdv.Hal.Bus.*.Frames`` counters) against frames offered: sustained
  (within 2 %), or fell behind (fewer, or more while it caught up on a backlog);
* the recording reader's throughput (frames per CPU second) against python-can's, on the bench's recording;
* latency p50/p99 from a datapoint's timestamp (the frame's scheduled arrival on the wall clock) to its receipt
  by the first subscriber;

next to the baseline measured in the same run: a bare cantools ``decode_message`` of the same frames, CPU µs per
frame, and the ratio of the server's CPU per frame to it.

With ``--before CHECKOUT`` (another checkout of the project, e.g. the main branch) every cell runs twice in the
same run, first with that checkout's server, then with this tree's: a before/after on the same machine and load.

With ``--workers 0,1,2`` every cell of this tree's server runs once per setting of ``sdv serve --decode-workers``
(``0``: single process, ``auto`` allowed), in the same run; the CPU is then that of serve's whole process tree
(the serve process, its decode workers and multiprocessing's resource tracker), and ``serve%`` that of the serve
process alone (publishing and serving; with no workers also receiving and decoding).

Prints figures; no pass/fail. Goals: 8 k frames/s with 10 subscribers at most 25 % of a core and p99 at most 5 ms;
64 k frames/s over 8 buses sustained with 10 subscribers.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import can
import cantools
import grpc
import yaml

from bench_broker import subscriber_process
from sdv._proto.kuksa.val.v2 import types_pb2, val_pb2
from sdv._proto.kuksa.val.v2.val_pb2_grpc import VALStub
from sdv.hal.recordings import read_recording
from sdv.resources import demo_profile, demo_recording

PER_BUS = 8_000
"""Frames per second of one saturated bus; higher rates are spread over several buses of this rate."""
SUSTAINED = 0.98
"""A cell counts as sustained when frames decoded are within 2 % of frames offered (fewer: the server could not
keep up; more: it was catching up on a backlog)."""
_LISTENING = re.compile(r"^sdv serve: listening on [^ ]+:(\d+)$")
_TICK = os.sysconf("SC_CLK_TCK")


# --- inputs ----------------------------------------------------------------------------------------------------
def write_recording(path: Path, rate: float) -> int:
    """The demo drive's frames as candump ``-L`` lines, retimed to ``rate`` frames/s; returns the frame count."""
    lines = []
    start = 1_800_000_000.0
    for index, frame in enumerate(read_recording(demo_recording())):
        width = 8 if frame.is_extended_id else 3
        frame_id = f"{frame.arbitration_id:0{width}X}"
        data = bytes(frame.data).hex().upper()
        if frame.is_fd:
            flags = (1 if frame.bitrate_switch else 0) | (2 if frame.error_state_indicator else 0)
            payload = f"{frame_id}##{flags:X}{data}"
        else:
            payload = f"{frame_id}#{data}"
        lines.append(f"({start + index / rate:.6f}) can0 {payload}\n")
    path.write_text("".join(lines))
    return len(lines)


def write_profile(path: Path, buses: int, recording: Path) -> None:
    """A profile of ``buses`` copies of the demo bus, each replaying ``recording`` in real time, looping."""
    demo_file = demo_profile()
    demo = yaml.safe_load(demo_file.read_text())
    (bus,) = demo["buses"]
    dbcs = [str((demo_file.parent / dbc).resolve()) for dbc in bus["dbc"]]
    profile: dict[str, Any] = {
        "name": f"bench-{buses}-buses",
        "buses": [],
        "freshness": demo.get("freshness", {}),
        "messages": [],
        "signals": [],
    }
    for index in range(buses):
        name = f"bus{index}"
        profile["buses"].append(
            {
                "name": name,
                "recording": {"file": str(recording), "realtime": True, "loop": True},
                "fd": bus.get("fd", False),
                "dbc": dbcs,
            }
        )
        profile["messages"] += [{**message, "bus": name} for message in demo.get("messages", [])]
        for entry in demo["signals"]:
            if entry.get("source") is None:
                if index == 0:
                    profile["signals"].append(entry)
                continue
            copy = {**entry, "path": entry["path"].replace("Vehicle.", f"Vehicle.Bus{index}.", 1)}
            copy["source"] = {**entry["source"], "bus": name}
            profile["signals"].append(copy)
    path.write_text(yaml.safe_dump(profile, sort_keys=False))


def bare_decode_us(recording: Path, frames: int = 20_000) -> float:
    """CPU µs per frame of cantools' ``decode_message`` over the recording's frames (the baseline)."""
    database = cantools.database.load_file(str(Path(demo_profile()).parent / "../dbc/sdv_demo.dbc"))
    known = {message.frame_id: message for message in database.messages}
    sample: list[can.Message] = []
    for frame in read_recording(recording):
        if frame.arbitration_id in known:
            sample.append(frame)
            if len(sample) >= frames:
                break
    started = time.process_time()
    for frame in sample:
        message = known[frame.arbitration_id]
        try:
            database.decode_message(message.frame_id, bytes(frame.data)[: message.length])
        except Exception:
            continue
    return (time.process_time() - started) / len(sample) * 1e6


def reader_rates(recording: Path, runs: int = 3) -> tuple[float, float]:
    """Frames per CPU second of the project's candump ``-L`` reader and of python-can's on one file, best of
    ``runs`` each."""
    ours = theirs = 0.0
    for _ in range(runs):
        started = time.process_time()
        count = sum(1 for _ in read_recording(recording))
        ours = max(ours, count / (time.process_time() - started))
        started = time.process_time()
        with recording.open() as stream, can.CanutilsLogReader(stream) as reader:
            count = sum(1 for _ in reader)
        theirs = max(theirs, count / (time.process_time() - started))
    return ours, theirs


# --- the server process ----------------------------------------------------------------------------------------
def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User plus system CPU time of a process and all its descendants (serve's decode workers), all threads;
    and of the process alone."""
    total = own = 0.0
    parents = {pid}
    processes: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                processes[int(entry.name)] = _stat(int(entry.name))
            except OSError:
                continue  # ended meanwhile
    while parents:
        parent = parents.pop()
        fields = processes.get(parent)
        if fields is not None:
            used = (int(fields[11]) + int(fields[12])) / _TICK
            total += used
            own = used if parent == pid else own
        parents |= {child for child, stat in processes.items() if int(stat[1]) == parent}
    return total, own


class Server:
    """``sdv serve --profile PROFILE`` on a free port of 127.0.0.1."""

    def __init__(
        self,
        profile: Path,
        buses: int,
        limits: Path | None = None,
        source: Path | None = None,
        workers: str = "0",
    ) -> None:
        command = [sys.executable, "-m", "sdv.cli.main", "serve", "--profile", str(profile), "--port", "0"]
        if workers != "0":
            command += ["--decode-workers", workers]
        if limits is not None:
            command += ["--limits", str(limits)]
        environment = dict(os.environ)
        if source is not None:  # another checkout's code (its src/ first on the path), for a before/after
            environment["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(source / "src"), environment.get("PYTHONPATH")])
            )
        # what serve writes to stderr, shown if it does not start; closed by stop()
        self._log = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        match = _LISTENING.match(line)
        if match is None:
            self.process.kill()
            self.process.wait()
            self._log.seek(0)
            said = self._log.read().decode(errors="replace").strip().splitlines()[-3:]
            raise SystemExit(f"sdv serve did not start: {line!r}; it said: {' / '.join(said)}")
        self.target = f"127.0.0.1:{match[1]}"
        self._channel = grpc.insecure_channel(self.target)
        self._stub = VALStub(self._channel)
        self._counters = [types_pb2.SignalID(path=f"Sdv.Hal.Bus.bus{index}.Frames") for index in range(buses)]

    def wait_for_frames(self, timeout: float = 60.0) -> None:
        """Return once every bus has counted frames (the HAL runs and has published its counters)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self._stub.GetValues(val_pb2.GetValuesRequest(signal_ids=self._counters))
            if all(point.value.uint64 for point in response.data_points):
                return
            time.sleep(0.1)
        raise SystemExit(f"sdv serve counted no frames on some bus within {timeout:g} s")

    def paths(self) -> list[str]:
        """Every signal the server serves."""
        listed = self._stub.ListMetadata(val_pb2.ListMetadataRequest(root="**"))
        return [meta.path for meta in listed.metadata]

    def frames(self) -> tuple[int, float]:
        """Frames received over all buses, and the newest counter's timestamp."""
        response = self._stub.GetValues(val_pb2.GetValuesRequest(signal_ids=self._counters))
        total = sum(point.value.uint64 for point in response.data_points)
        newest = max(point.timestamp.seconds + point.timestamp.nanos / 1e9 for point in response.data_points)
        return total, newest

    def stop(self) -> None:
        self._channel.close()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def measure(server: Server, subscribers: int, warmup: float, window: float) -> dict[str, Any]:
    """One cell: the server's CPU and frame rate over ``window`` s, with ``subscribers`` subscribed."""
    pid = server.process.pid
    result: dict[str, Any] = {"latencies": [], "responses": 0.0}
    if subscribers:
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        # Every signal, the first subscriber timed (the others are load).
        child = context.Process(
            target=subscriber_process,
            args=(server.target, server.paths(), subscribers, warmup, window, 1, sender),
        )
        child.start()
        assert receiver.recv() == "start"
        cpu, frames, wall = cpu_seconds(pid), server.frames(), time.perf_counter()
        assert receiver.recv() == "stop"
        after, frames_after, elapsed = cpu_seconds(pid), server.frames(), time.perf_counter() - wall
        received = receiver.recv()
        child.join()
        result["latencies"] = received["latencies"]
        result["responses"] = statistics.mean(received["responses"]) / received["elapsed"]
    else:
        time.sleep(warmup)
        cpu, frames, wall = cpu_seconds(pid), server.frames(), time.perf_counter()
        time.sleep(window)
        after, frames_after, elapsed = cpu_seconds(pid), server.frames(), time.perf_counter() - wall
    counted = frames_after[1] - frames[1]
    result["cpu"] = (after[0] - cpu[0]) / elapsed
    result["own_cpu"] = (after[1] - cpu[1]) / elapsed
    result["decoded_rate"] = (frames_after[0] - frames[0]) / counted if counted > 0 else 0.0
    return result


def _row(rate: int, buses: int, subscribers: int, cell: dict[str, Any], baseline: float) -> str:
    per_frame = cell["cpu"] / rate * 1e6
    # More than offered is a backlog being caught up: the server had fallen behind.
    steady = abs(cell["decoded_rate"] / rate - 1) <= 1 - SUSTAINED
    verdict = "sustained" if steady else "fell behind"
    latencies = sorted(cell["latencies"])
    p50 = f"{_quantile(latencies, 0.5):7.2f}" if latencies else f"{'-':>7}"
    p99 = f"{_quantile(latencies, 0.99):7.2f}" if latencies else f"{'-':>7}"
    responses = f"{cell['responses']:7.0f}" if subscribers else f"{'-':>7}"
    return (
        f"{rate:>8,} {buses:>5} {subscribers:>4} {cell['cpu'] * 100:6.1f} {cell['own_cpu'] * 100:6.1f} "
        f"{per_frame:8.1f} "
        f"{per_frame / baseline:6.1f} {cell['decoded_rate']:9,.0f} {verdict:>11} {responses} {p50} {p99}"
    )


def _quantile(samples: list[float], fraction: float) -> float:
    return samples[min(len(samples) - 1, int(fraction * len(samples)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1000,8000,32000,64000", help="total frames/s, comma-separated")
    parser.add_argument("--subscribers", default="0,1,10", help="numbers of subscribers, comma-separated")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each measuring window")
    parser.add_argument("--window", type=float, default=3.0, help="seconds of each measuring window")
    parser.add_argument(
        "--tick-ms", type=float, help="the server's subscription_tick_ms (default: the server's default)"
    )
    parser.add_argument(
        "--tick-max-ms",
        type=float,
        help="the server's subscription_tick_max_ms, the longest tick under load (default: the server's default; "
        "equal to --tick-ms: a fixed tick)",
    )
    parser.add_argument(
        "--cpu-budget",
        type=float,
        help="the server's subscription_cpu_budget, the load (fraction of a core) above which its tick lengthens",
    )
    parser.add_argument(
        "--before",
        type=Path,
        metavar="CHECKOUT",
        help="also run every cell with the server of another checkout of the project (e.g. the main branch), "
        "printed as 'before' above this tree's 'after'",
    )
    parser.add_argument(
        "--workers",
        default="0",
        help="settings of sdv serve --decode-workers for this tree's server, comma-separated (0: one process; "
        "auto); each runs every cell",
    )
    args = parser.parse_args()
    variants: list[tuple[str, Path | None, str]] = [
        ("after", None, workers) for workers in args.workers.split(",")
    ]
    if args.before is not None:
        variants.insert(0, ("before", args.before.resolve(), "0"))
    rates = [int(rate) for rate in args.rates.split(",")]
    counts = [int(count) for count in args.subscribers.split(",")]
    with tempfile.TemporaryDirectory(prefix="sdv-bench-serve-") as directory:
        folder = Path(directory)
        baseline: float | None = None
        print("sdv serve fed in real time (recordings, one per bus); CPU of the server's process tree")
        print(
            f"{'':>6} {'workers':>7} {'offered':>8} {'buses':>5} {'subs':>4} {'CPU %':>6} {'serve%':>6} "
            f"{'µs/frame':>8} {'x bare':>6} "
            f"{'decoded/s':>9} {'verdict':>11} {'resp/s':>7} {'p50 ms':>7} {'p99 ms':>7}"
        )
        for rate in rates:
            buses = max(1, rate // PER_BUS)
            per_bus = rate / buses
            recording = folder / f"drive-{per_bus:.0f}.log"
            if not recording.exists():
                write_recording(recording, per_bus)
            if baseline is None:
                baseline = bare_decode_us(recording)
                ours, theirs = reader_rates(recording)
                print(
                    f"recording reader (candump -L): {ours:,.0f} frames/s, python-can's {theirs:,.0f} frames/s "
                    f"({ours / theirs:.2f}x)"
                )
            profile = folder / f"profile-{buses}.yaml"
            write_profile(profile, buses, recording)
            limits = None
            settings = {
                "subscription_tick_ms": args.tick_ms,
                "subscription_tick_max_ms": args.tick_max_ms,
                "subscription_cpu_budget": args.cpu_budget,
            }
            if any(value is not None for value in settings.values()):
                limits = folder / "limits.yaml"
                limits.write_text(
                    yaml.safe_dump({key: value for key, value in settings.items() if value is not None})
                )
            for label, source, workers in variants:
                server = Server(profile, buses, limits, source, workers)
                try:
                    server.wait_for_frames()
                    for subscribers in counts:
                        cell = measure(server, subscribers, args.warmup, args.window)
                        row = _row(rate, buses, subscribers, cell, baseline)
                        print(f"{label:>6} {workers:>7} {row}", flush=True)
                finally:
                    server.stop()
        print(f"baseline: bare cantools decode_message {baseline:.1f} µs/frame (same frames, this process)")


if __name__ == "__main__":
    main()
