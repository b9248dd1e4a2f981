"""Streaming safety checks of file-tree payloads (uncompressed POSIX tar archives).

:class:`TarInspector` is fed the payload in chunks of any size, as they stream past the hash, and never holds
more than one 512-byte header and, bounded by :class:`~sdv.ota.bundle.config.OtaLimits`, one pax or GNU long-name
header. Entry data is skipped by counting. It refuses, naming the entry:

* anything but regular files, directories, symbolic links and hard links (device files, FIFOs, sparse files,
  unknown types);
* absolute paths, ``..`` components, empty names and names that differ only by ``./`` or repeated slashes from
  an earlier entry (duplicates: an extractor would silently overwrite);
* symbolic links whose target is absolute or, resolved inside the tree together with every other link of the
  archive, leaves the tree; entries that lie below a symbolic link (an extractor would write through it);
* hard links to anything but an earlier regular file of the archive;
* set-user-id and set-group-id bits on non-directories (unless allowed), more entries or longer paths than the
  limits, malformed headers (bad checksum, bad numbers, no end-of-archive marker, data after it).

Accepted header formats: POSIX ustar and pax (``x`` headers; ``g`` headers that do not set ``path``,
``linkpath`` or ``size``) and GNU tar (``L``/``K`` long names, base-256 sizes). This module performs no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from sdv.ota.bundle.config import DEFAULT_LIMITS, OtaLimits
from sdv.ota.errors import ArchiveFormatError, SizeLimitError, UnsafeArchiveEntryError

__all__ = ["ArchiveEntry", "EntryKind", "TarInspector"]

_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)
_REGULAR_TYPES = {b"0", b"\x00", b"7"}
_SPECIAL_TYPES = {b"3": "character device", b"4": "block device", b"6": "FIFO"}
_SETID_BITS = 0o6000


class EntryKind(Enum):
    """What an accepted archive entry creates."""

    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"


@dataclass(frozen=True)
class ArchiveEntry:
    """One accepted entry.

    Attributes:
        path: the normalized relative path (``"."`` for the tree's root directory).
        kind: what it creates.
        size: data length of a regular file (0 otherwise).
        link: normalized target of a hard link, or the raw target of a symbolic link.
        mode: the permission bits.
    """

    path: str
    kind: EntryKind
    size: int
    link: str
    mode: int


class _State(Enum):
    HEADER = 1
    DATA = 2
    END = 3


def _parse_number(field: bytes, what: str) -> int:
    if field and field[0] & 0x80:
        if field[0] == 0xFF:
            raise ArchiveFormatError(f"{what}: negative base-256 number")
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\x00", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise ArchiveFormatError(f"{what}: {text!r} is not an octal number") from None


def _parse_pax(data: bytes, what: str) -> dict[str, str]:
    records: dict[str, str] = {}
    position = 0
    while position < len(data):
        space = data.find(b" ", position)
        if space < 0:
            raise ArchiveFormatError(f"{what}: malformed pax record")
        try:
            length = int(data[position:space])
        except ValueError:
            raise ArchiveFormatError(f"{what}: malformed pax record length") from None
        end = position + length
        if length <= space - position + 1 or end > len(data) or data[end - 1 : end] != b"\n":
            raise ArchiveFormatError(f"{what}: malformed pax record")
        key, separator, value = data[space + 1 : end - 1].partition(b"=")
        if not separator:
            raise ArchiveFormatError(f"{what}: pax record without '='")
        try:
            records[key.decode("utf-8")] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise ArchiveFormatError(f"{what}: pax record is not UTF-8") from None
        position = end
    return records


class TarInspector:
    """Incremental safety checker of one tar archive.

    Args:
        label: names the archive in messages (for example ``"payload app.tar"``).
        limits: the limits to apply.
    """

    def __init__(self, label: str, limits: OtaLimits = DEFAULT_LIMITS) -> None:
        self._label = label
        self._limits = limits
        self._state = _State.HEADER
        self._header = bytearray()
        self._skip = 0
        self._collect: bytearray | None = None
        self._collect_type = b""
        self._collect_size = 0
        self._pending_pax: dict[str, str] = {}
        self._long_name: str | None = None
        self._long_link: str | None = None
        self._entries: dict[str, ArchiveEntry] = {}
        self._offset = 0

    @property
    def entries(self) -> list[ArchiveEntry]:
        """The entries accepted so far, in archive order."""
        return list(self._entries.values())

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Inspect the next bytes of the archive.

        Raises:
            ArchiveFormatError, UnsafeArchiveEntryError, SizeLimitError: at the first problem.
        """
        view = memoryview(chunk).cast("B")
        position = 0
        while position < len(view):
            if self._state is _State.END:
                if any(view[position:]):
                    raise ArchiveFormatError(f"{self._label}: data after the end-of-archive marker")
                self._offset += len(view) - position
                return
            if self._state is _State.DATA:
                step = min(self._skip, len(view) - position)
                if self._collect is not None:
                    self._collect += view[position : position + step]
                self._skip -= step
                position += step
                self._offset += step
                if self._skip == 0:
                    self._state = _State.HEADER
                    self._finish_meta_data()
                continue
            step = min(_BLOCK - len(self._header), len(view) - position)
            self._header += view[position : position + step]
            position += step
            self._offset += step
            if len(self._header) == _BLOCK:
                header = bytes(self._header)
                self._header.clear()
                self._on_header(header)

    def finish(self) -> list[ArchiveEntry]:
        """Check the archive as a whole once every byte was fed.

        Returns:
            The accepted entries.

        Raises:
            ArchiveFormatError: if the archive ends inside an entry or without an end-of-archive marker.
            UnsafeArchiveEntryError: if an entry lies below a link or a link leaves the tree.
        """
        if self._state is not _State.END:
            raise ArchiveFormatError(f"{self._label}: archive ends without its end-of-archive marker")
        symlinks = {
            entry.path: entry.link for entry in self._entries.values() if entry.kind is EntryKind.SYMLINK
        }
        for entry in self._entries.values():
            parts = entry.path.split("/")
            for depth in range(1, len(parts)):
                ancestor = "/".join(parts[:depth])
                if ancestor in symlinks:
                    raise UnsafeArchiveEntryError(
                        f"{self._label}: entry {entry.path} lies below the symbolic link {ancestor}"
                    )
        for path, target in symlinks.items():
            self._resolve_inside(path, target, symlinks)
        return self.entries

    def _where(self) -> str:
        return f"{self._label} (offset {self._offset - _BLOCK})"

    def _on_header(self, header: bytes) -> None:
        if header == _ZERO_BLOCK:
            if self._pending_pax or self._long_name is not None or self._long_link is not None:
                raise ArchiveFormatError(f"{self._where()}: extended header without an entry")
            self._state = _State.END
            return
        stored = _parse_number(header[148:156], f"{self._where()}: checksum")
        computed = sum(header[:148]) + 8 * 0x20 + sum(header[156:])
        if stored != computed:
            raise ArchiveFormatError(f"{self._where()}: header checksum {stored} does not match {computed}")
        magic = header[257:265]
        if magic not in (b"ustar\x0000", b"ustar  \x00"):
            raise ArchiveFormatError(f"{self._where()}: not a ustar, pax or GNU tar header")
        typeflag = header[156:157]
        size = _parse_number(header[124:136], f"{self._where()}: size")
        if typeflag in (b"x", b"g", b"L", b"K"):
            if size > self._limits.max_pax_header_bytes:
                raise SizeLimitError(
                    f"{self._where()}: extended header of {size} bytes exceeds the limit of "
                    f"{self._limits.max_pax_header_bytes}"
                )
            self._start_data(size, collect=True, typeflag=typeflag)
            return
        pax = self._pending_pax
        self._pending_pax = {}
        if "size" in pax:
            try:
                size = int(pax["size"])
            except ValueError:
                raise ArchiveFormatError(
                    f"{self._where()}: pax size {pax['size']!r} is not a number"
                ) from None
        raw_name = self._header_text(header[0:100])
        prefix = self._header_text(header[345:500]) if magic == b"ustar\x0000" else ""
        name = pax.get("path") or self._long_name or (f"{prefix}/{raw_name}" if prefix else raw_name)
        link = pax.get("linkpath") or self._long_link or self._header_text(header[157:257])
        self._long_name = None
        self._long_link = None
        mode = _parse_number(header[100:108], f"{self._where()}: mode")
        self._add_entry(name, typeflag, size, link, mode)
        self._start_data(size if typeflag not in (b"1", b"2", b"5") else 0, collect=False, typeflag=typeflag)

    def _header_text(self, field: bytes) -> str:
        try:
            return field.split(b"\x00", 1)[0].decode("utf-8")
        except UnicodeDecodeError:
            raise ArchiveFormatError(f"{self._where()}: name is not UTF-8") from None

    def _start_data(self, size: int, *, collect: bool, typeflag: bytes) -> None:
        padded = -(-size // _BLOCK) * _BLOCK
        self._collect = bytearray() if collect else None
        self._collect_type = typeflag
        self._collect_size = size
        if padded:
            self._skip = padded
            self._state = _State.DATA
        elif collect:
            self._finish_meta_data()

    def _finish_meta_data(self) -> None:
        if self._collect is None:
            return
        data = bytes(self._collect[: self._collect_size])
        self._collect = None
        what = f"{self._label}: extended header"
        if self._collect_type == b"x":
            self._pending_pax.update(_parse_pax(data, what))
        elif self._collect_type == b"g":
            records = _parse_pax(data, what)
            overriding = sorted({"path", "linkpath", "size"} & set(records))
            if overriding:
                raise UnsafeArchiveEntryError(f"{what}: a global pax header may not set {overriding[0]}")
        else:
            try:
                text = data.split(b"\x00", 1)[0].decode("utf-8")
            except UnicodeDecodeError:
                raise ArchiveFormatError(f"{what}: long name is not UTF-8") from None
            if self._collect_type == b"L":
                self._long_name = text
            else:
                self._long_link = text

    def _normalize(self, path: str, what: str) -> str:
        if len(path.encode("utf-8")) > self._limits.max_archive_path_bytes:
            raise SizeLimitError(
                f"{self._label}: {what} is longer than {self._limits.max_archive_path_bytes} bytes"
            )
        if not path:
            raise UnsafeArchiveEntryError(f"{self._label}: {what} is empty")
        if "\x00" in path:
            raise UnsafeArchiveEntryError(f"{self._label}: {what} {path!r} contains a NUL character")
        if path.startswith("/"):
            raise UnsafeArchiveEntryError(f"{self._label}: {what} {path!r} is an absolute path")
        parts = [part for part in path.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise UnsafeArchiveEntryError(f"{self._label}: {what} {path!r} contains '..'")
        return "/".join(parts) or "."

    def _add_entry(self, name: str, typeflag: bytes, size: int, link: str, mode: int) -> None:
        if len(self._entries) >= self._limits.max_archive_entries:
            raise SizeLimitError(f"{self._label}: more than {self._limits.max_archive_entries} entries")
        path = self._normalize(name, "entry path")
        if typeflag in _SPECIAL_TYPES:
            raise UnsafeArchiveEntryError(
                f"{self._label}: entry {path} is a {_SPECIAL_TYPES[typeflag]}; only files, directories and "
                "links are allowed"
            )
        if path in self._entries:
            raise UnsafeArchiveEntryError(f"{self._label}: entry {path} appears more than once")
        if typeflag in _REGULAR_TYPES:
            kind = EntryKind.FILE
        elif typeflag == b"5":
            kind = EntryKind.DIRECTORY
        elif typeflag == b"2":
            kind = EntryKind.SYMLINK
        elif typeflag == b"1":
            kind = EntryKind.HARDLINK
        else:
            raise UnsafeArchiveEntryError(
                f"{self._label}: entry {path} has type {typeflag!r}; "
                "only files, directories and links are allowed"
            )
        if path == "." and kind is not EntryKind.DIRECTORY:
            raise UnsafeArchiveEntryError(
                f"{self._label}: entry {name!r} names the tree's root but is no directory"
            )
        if kind is not EntryKind.DIRECTORY and mode & _SETID_BITS and not self._limits.allow_setid_bits:
            raise UnsafeArchiveEntryError(
                f"{self._label}: entry {path} has a set-user-id or set-group-id bit"
            )
        if kind is EntryKind.HARDLINK:
            target = self._normalize(link, f"hard link target of {path}")
            linked = self._entries.get(target)
            if linked is None or linked.kind is not EntryKind.FILE:
                raise UnsafeArchiveEntryError(
                    f"{self._label}: hard link {path} points to {target}, "
                    "which is not an earlier regular file of the archive"
                )
            link = target
        elif kind is EntryKind.SYMLINK:
            if not link:
                raise UnsafeArchiveEntryError(f"{self._label}: symbolic link {path} has an empty target")
            if link.startswith("/"):
                raise UnsafeArchiveEntryError(
                    f"{self._label}: symbolic link {path} points to the absolute path {link!r}, "
                    "outside the tree"
                )
            if len(link.encode("utf-8")) > self._limits.max_archive_path_bytes:
                raise SizeLimitError(f"{self._label}: target of symbolic link {path} is too long")
        entry_size = size if kind is EntryKind.FILE else 0
        self._entries[path] = ArchiveEntry(path, kind, entry_size, link, mode & 0o7777)

    def _resolve_inside(self, path: str, target: str, symlinks: dict[str, str]) -> None:
        """Resolve a symbolic link lexically, following the archive's other links, and refuse an escape."""
        stack = path.split("/")[:-1]
        pending = target.split("/")
        hops = 0
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not stack:
                    raise UnsafeArchiveEntryError(
                        f"{self._label}: symbolic link {path} -> {target} leaves the tree"
                    )
                stack.pop()
                continue
            stack.append(part)
            current = "/".join(stack)
            nested = symlinks.get(current)
            if nested is not None:
                hops += 1
                if hops > self._limits.max_link_hops:
                    raise UnsafeArchiveEntryError(
                        f"{self._label}: symbolic link {path} -> {target} needs more than "
                        f"{self._limits.max_link_hops} link resolutions"
                    )
                stack.pop()
                pending = nested.split("/") + pending
