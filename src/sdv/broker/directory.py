"""The directory of the signals a broker serves: lookups by path, id and branch, each for a caller's rights.

A path, id or branch the caller may not read is refused the way one that does not exist is (for a caller who may
read only some signals), so the catalogue cannot be probed (docs/security.md).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from sdv.broker.access import Access, Action
from sdv.errors import UnknownSignalError, ValueOutOfRangeError
from sdv.types.signals import SignalMetadata

__all__ = ["SignalDirectory"]


class SignalDirectory:
    """Every signal's metadata, by path and by id.

    Args:
        metadata: every signal served.
        max_path_length: the longest path a request may name.
    """

    def __init__(self, metadata: Sequence[SignalMetadata], max_path_length: int) -> None:
        self._by_path = {meta.path: meta for meta in metadata}
        self._by_id = {meta.id: meta for meta in metadata}
        self._max_path_length = max_path_length

    @property
    def paths(self) -> list[str]:
        """Every signal's path, in order."""
        return list(self._by_path)

    def _check_path(self, path: str) -> None:
        if not path or len(path) > self._max_path_length:
            raise ValueOutOfRangeError(f"a signal path must have 1 to {self._max_path_length} characters")

    def metadata(self, path: str, action: Action = Action.READ, *, access: Access) -> SignalMetadata:
        """The metadata of the signal at ``path``, for a caller with ``access`` allowed to do ``action`` on it.

        Raises:
            AccessDenied: the caller may not do ``action`` on ``path``.
            UnknownSignalError: naming the path and close matches (among the signals the caller may read).
            ValueOutOfRangeError: for an empty or over-long path.
        """
        self._check_path(path)
        access.check(action, path)
        meta = self._by_path.get(path)
        if meta is None:
            known = [known for known in self._by_path if access.allows(Action.READ, known)]
            close = difflib.get_close_matches(path, known, n=3)
            raise UnknownSignalError(
                f"unknown signal {path!r}" + (f"; did you mean {', '.join(close)}?" if close else "")
            )
        return meta

    def metadata_by_id(self, signal_id: int, *, access: Access) -> SignalMetadata:
        """The metadata of the signal with id ``signal_id``.

        An id the caller may not read is refused exactly as an id no signal has, unless the caller may read
        every signal: an id names no path the caller's scope could be matched against, so telling the two apart
        would let a caller walk the ids to list the catalogue.

        Raises:
            UnknownSignalError: no signal has that id, for a caller who may read every signal.
            AccessDenied: the caller may not read the signal, or (for a caller who may read only some) no signal
                has that id; the message names only the id.
        """
        meta = self._by_id.get(signal_id)
        if meta is not None and access.allows(Action.READ, meta.path):
            return meta
        if meta is None and access.allows_every(Action.READ):
            raise UnknownSignalError(f"unknown signal id {signal_id}")
        raise access.denied(f"{Action.READ.value} signal id {signal_id}")

    def list_metadata(self, root: str = "", *, access: Access) -> list[SignalMetadata]:
        """Metadata of the signals under ``root``.

        ``root`` is empty (every signal), a branch (``Vehicle.Cabin``), a signal path, or a pattern in which
        ``*`` matches one path segment and ``**`` any number of segments (``Vehicle.*.IsOpen``).

        Only the signals the caller may read are listed. A root the caller may not read is refused the same way
        whether or not signals match it, so that the branches of the catalogue cannot be probed.

        Raises:
            UnknownSignalError: when nothing matches a root the caller may read.
            AccessDenied: when the caller may read nothing under ``root`` (the message names only ``root``).
        """
        try:
            found = self._matching(root)
        except UnknownSignalError:
            if access.allows(Action.READ, root):
                raise
            raise access.denied(f"{Action.READ.value} {root}") from None
        readable = [meta for meta in found if access.allows(Action.READ, meta.path)]
        if not readable:
            raise access.denied(f"{Action.READ.value} {root}" if root else "read any signal")
        return readable

    def _matching(self, root: str) -> list[SignalMetadata]:
        if not root:
            return list(self._by_path.values())
        if len(root) > self._max_path_length:
            raise ValueOutOfRangeError(f"a signal path must have at most {self._max_path_length} characters")
        if "*" in root:
            pattern = re.compile(
                "^"
                + r"\.".join(
                    ".+" if part == "**" else "[^.]+" if part == "*" else re.escape(part)
                    for part in root.split(".")
                )
                + "$"
            )
            found = [meta for path, meta in self._by_path.items() if pattern.match(path)]
        else:
            prefix = root + "."
            found = [meta for path, meta in self._by_path.items() if path == root or path.startswith(prefix)]
        if not found:
            raise UnknownSignalError(f"no signal matches {root!r}")
        return found
