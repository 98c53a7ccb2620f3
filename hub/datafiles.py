"""What a data path must be before anything parses it.

A data path is resolved (symlinks followed) and must be a regular file or a folder outside
``/proc``, ``/sys`` and ``/dev``: reading a FIFO blocks, ``/dev/zero`` never ends and
``/proc/self/environ`` holds the process's secrets. A file's size is checked against
``EVALHUB_MAX_DATA_MB`` and, for CSV/TSV/JSONL, its longest line against
``EVALHUB_MAX_LINE_MB`` (read when a file is read, so a run can raise them), in one pass over
its bytes that also checks UTF-8. Hand-written: no library checks these before parsing.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

from hub.errors import UserError, clean, quote

LINE_SUFFIXES = (".csv", ".tsv", ".jsonl")       # formats read a line at a time: their lines are bounded
LIMITS = {"EVALHUB_MAX_DATA_MB": 1024.0, "EVALHUB_MAX_LINE_MB": 8.0}   # name -> default, in MB (2**20 bytes)
SYSTEM_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))  # kernel views and devices, never data
_CHUNK = 1 << 20


def path_kind(name: str, path: Path) -> str | None:
    """"file", "folder" or None (nothing there) for ``path`` with symlinks followed; anything
    else (a device, FIFO or socket, or a path into /proc, /sys or /dev) is a UserError."""
    try:
        real = path.resolve()
    except (OSError, RuntimeError) as exc:       # a symlink loop, …
        raise UserError(f"{name}: cannot resolve the path ({reason(exc)})") from None
    try:
        mode = real.stat().st_mode               # stat never opens: a FIFO cannot block it
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:                       # permissions, …
        raise UserError(f"{name}: cannot read it ({reason(exc)})") from None
    root = next((r for r in SYSTEM_ROOTS if real == r or real.is_relative_to(r)), None)
    if root is not None:                         # /proc/self/environ stats as a regular file
        raise UserError(f"{name}: points into {root}, which holds system files, not data; give a "
                        f"CSV/TSV/JSONL/JSON/Parquet file or a datasets folder")
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISREG(mode):
        return "file"
    what = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
    raise UserError(f"{name}: is {what}, not a data file; give a regular CSV/TSV/JSONL/JSON/Parquet file "
                    f"or a datasets folder")


def reason(exc: BaseException) -> str:
    return clean(getattr(exc, "strerror", None) or type(exc).__name__, 80)


def env_megabytes(variable: str, default: float, *, zero_ok: bool = False) -> float:
    """The number of megabytes environment variable ``variable`` sets now (``default`` when unset);
    anything but a positive number (or zero, with ``zero_ok``) is a UserError naming it."""
    value = os.environ.get(variable, "").strip()
    if not value:
        return default
    try:
        mb = float(value)
    except ValueError:
        mb = math.nan
    if not (mb >= 0 if zero_ok else mb > 0):     # also refuses nan
        kind = "number of megabytes >= 0" if zero_ok else "positive number of megabytes"
        raise UserError(f"{variable}={quote(value, 40)} is not a {kind}; set it to one "
                        f"(default {default:g}) or unset it")
    return mb


def limit_mb(variable: str) -> float:
    """The limit in MB that environment variable ``variable`` sets now (its default when unset)."""
    return env_megabytes(variable, LIMITS[variable])


def _size(n: int) -> str:
    return f"{n:,} bytes" if n < 1 << 20 else f"{n / (1 << 20):,.1f} MB"


def check_file(name: str, path: Path) -> None:
    """Refuse ``path`` unless it is a regular file within the size limit and, for a line-based
    format, within the line limit and valid UTF-8; reads it once in chunks, parses nothing."""
    if path_kind(name, path) != "file":
        raise UserError(f"{name}: not a file; give a CSV/TSV/JSONL/JSON/Parquet file")
    size, mb = path.stat().st_size, limit_mb("EVALHUB_MAX_DATA_MB")
    if size > mb * (1 << 20):
        raise UserError(f"{name}: the file is {_size(size)}, over the {mb:g} MB limit for a data file; "
                        f"use a smaller file or raise EVALHUB_MAX_DATA_MB")
    if path.suffix.lower() in LINE_SUFFIXES:
        _scan_lines(name, path, limit_mb("EVALHUB_MAX_LINE_MB"))


def _scan_lines(name: str, path: Path, mb: float) -> None:
    """One pass over the bytes: the first line longer than ``mb`` MB, or the first byte that is
    not UTF-8, is a UserError naming where it is."""
    limit, line, run, offset, tail = mb * (1 << 20), 1, 0, 0, b""
    with open_binary(name, path) as fh:
        while chunk := fh.read(_CHUNK):
            tail = _check_utf8(name, tail + chunk, offset - len(tail), final=False)
            offset += len(chunk)
            parts = chunk.split(b"\n")          # parts[i] is on line `line + i`; the last is unfinished
            if len(parts) > 1:
                if run + len(parts[0]) > limit:
                    _too_long(name, line, run + len(parts[0]), mb)
                if len(parts) > 2 and max(map(len, parts[1:-1])) > limit:
                    i = next(i for i in range(1, len(parts) - 1) if len(parts[i]) > limit)
                    _too_long(name, line + i, len(parts[i]), mb)
                line, run = line + len(parts) - 1, 0
            run += len(parts[-1])
            if run > limit:                      # an unfinished line already over: measure it whole
                while (more := fh.read(_CHUNK)) and b"\n" not in more:
                    run += len(more)
                _too_long(name, line, run + (more.find(b"\n") if more else 0), mb)
    _check_utf8(name, tail, offset - len(tail), final=True)


def _too_long(name: str, line: int, length: int, mb: float) -> None:
    raise UserError(f"{name}: line {line:,} is {_size(length)} long, over the {mb:g} MB limit for one line; "
                    f"check it is one row per line or raise EVALHUB_MAX_LINE_MB")


def _check_utf8(name: str, data: bytes, offset: int, *, final: bool) -> bytes:
    """Check that ``data`` (byte ``offset`` on in the file) is UTF-8; return a character cut at its
    end (not ``final``) to be checked with the next chunk."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not final and exc.reason == "unexpected end of data":
            return data[exc.start:]
        raise UserError(f"{name}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at position "
                        f"{offset + exc.start}); re-save it as UTF-8") from None
    return b""


def open_binary(name: str, path: Path):
    try:
        return path.open("rb")
    except OSError as exc:   # permissions, a folder in its place, …
        raise UserError(f"{name}: cannot read it ({reason(exc)})") from None
