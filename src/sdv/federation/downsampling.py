"""What the gateway sends over the cellular link, and what it keeps while the link is down (pure).

Per signal, the first :class:`~sdv.federation_config.DownsampleRule` whose pattern matches sets the shortest
interval between two values sent; a value that comes too early is held and sent once the interval has passed
(the latest held value wins). While the link is down, values wait in a buffer of ``buffer_size`` entries, the
oldest dropped first, and are sent in order when it is back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from sdv.federation.patterns import PathPatterns
from sdv.federation_config import DownsampleRule
from sdv.types.signals import Datapoint

__all__ = ["TelemetryQueue"]


class TelemetryQueue:
    """Downsampling per signal and a bounded outage buffer.

    Args:
        rules: the downsampling rules, first match applies.
        buffer_size: the most values kept while the link is down.
    """

    def __init__(self, rules: Sequence[DownsampleRule], buffer_size: int) -> None:
        self._rules = [(PathPatterns.compile([rule.pattern]), rule.min_interval_ms / 1000) for rule in rules]
        self._interval: dict[str, float] = {}
        self._last_sent: dict[str, float] = {}
        self._held: dict[str, Datapoint] = {}
        self._buffer: deque[tuple[str, Datapoint]] = deque(maxlen=buffer_size)
        self.dropped = 0
        """Values lost because the outage buffer was full."""

    def interval(self, path: str) -> float:
        """The shortest time between two values of ``path``, in seconds (0: every value)."""
        found = self._interval.get(path)
        if found is None:
            found = next((seconds for patterns, seconds in self._rules if patterns.matches(path)), 0.0)
            self._interval[path] = found
        return found

    def offer(self, path: str, datapoint: Datapoint, now: float) -> None:
        """Take a new value of ``path`` at ``now`` (monotonic seconds)."""
        if now - self._last_sent.get(path, float("-inf")) >= self.interval(path):
            self._enqueue(path, datapoint, now)
            self._held.pop(path, None)
        else:
            self._held[path] = datapoint

    def release_held(self, now: float) -> None:
        """Move the held values whose interval has passed to the queue."""
        for path in [path for path in self._held if now - self._last_sent[path] >= self.interval(path)]:
            self._enqueue(path, self._held.pop(path), now)

    def _enqueue(self, path: str, datapoint: Datapoint, now: float) -> None:
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
        self._buffer.append((path, datapoint))
        self._last_sent[path] = now

    def take(self) -> list[tuple[str, Datapoint]]:
        """Every queued value, oldest first (the link is up)."""
        taken = list(self._buffer)
        self._buffer.clear()
        return taken

    def __len__(self) -> int:
        return len(self._buffer)
