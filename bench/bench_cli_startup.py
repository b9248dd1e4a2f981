"""CPU cost of the command line where people wait: `sdv get` against a running server, and `sdv serve` until it
listens, each as a ratio to a bare `python -c pass` in the same run.

    python bench/bench_cli_startup.py [--repeat N]

CPU time (user + system) is read from the kernel for each child process, so a loaded machine slows the wall
clock but changes the figures little; the median of N runs is printed.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

_SDV = [sys.executable, "-m", "sdv.cli.main"]
_TICKS = os.sysconf("SC_CLK_TCK")


def _child_cpu(command: list[str]) -> float:
    """CPU seconds one finished child process used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, capture_output=True, check=False, timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _process_cpu(pid: int) -> float:
    """CPU seconds a running process used so far (/proc/PID/stat: utime, stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _serve_until_listening() -> tuple[subprocess.Popen[str], str, float]:
    server = subprocess.Popen(
        [*_SDV, "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert server.stdout is not None
    line = server.stdout.readline()  # "sdv serve: listening on 127.0.0.1:PORT"
    if "listening on" not in line:
        server.kill()
        raise SystemExit(f"sdv serve did not start: {line!r}")
    return server, line.rsplit(" ", 1)[1].strip(), _process_cpu(server.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command (default 5)")
    args = parser.parse_args()
    baseline = statistics.median(_child_cpu([sys.executable, "-c", "pass"]) for _ in range(args.repeat))
    serve_cpu = []
    get_cpu = []
    for _ in range(args.repeat):
        server, target, listening = _serve_until_listening()
        serve_cpu.append(listening)
        try:
            get_cpu.append(_child_cpu([*_SDV, "get", "Vehicle.Speed", "--server", target]))
        finally:
            server.terminate()
            server.wait(30)
    get, serve = statistics.median(get_cpu), statistics.median(serve_cpu)
    print(f"CPU seconds, median of {args.repeat} runs (goal: sdv get <= 0.3, sdv serve listening <= 0.8)")
    print(f"{'python -c pass (baseline)':34} {baseline:6.3f} s")
    print(f"{'sdv get Vehicle.Speed':34} {get:6.3f} s   {get / baseline:5.1f} x baseline")
    print(f"{'sdv serve, until listening':34} {serve:6.3f} s   {serve / baseline:5.1f} x baseline")


if __name__ == "__main__":
    main()
