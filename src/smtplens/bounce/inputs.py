"""Reading mails: single files (.eml), directories searched recursively, Maildir folders, mbox files, stdin.

Every mail is yielded as ``(name, bytes)``; a file that cannot be read is yielded as ``(name, InputError)`` and
the batch goes on. Memory stays bounded: a mail larger than ``limit`` bytes is read only up to the limit (the
rest is skipped, not loaded) and a warning names it; mbox files are read as a stream, one mail at a time.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from smtplens.errors import SmtplensError

__all__ = ["DEFAULT_LIMIT", "InputError", "expand", "iter_mails"]

DEFAULT_LIMIT = 50 * 1024 * 1024  # bytes of one mail that are read; a bounce is rarely more than a few MB
STDIN = "-"
_FIRST = 1 << 16  # the first read of a file: most mails fit whole
_CHUNK = 1 << 16  # longest piece of a line read at once from an mbox, so that one huge line cannot fill memory
_SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__"})

# An mbox separator line in full ("From sender Thu Jul  2 12:05:05 2020", RFC 4155 section 2): such a line starts
# a mail even without the blank line before it that some writers leave out; a bare "From " line needs the blank.
_SEPARATOR = re.compile(
    rb"From \S+ +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +[0-9]{1,2} "
    rb"[0-9]{2}:[0-9]{2}(?::[0-9]{2})? (?:[A-Z]{2,5} )?[0-9]{4}\s*$"
)

WarningHandler = Callable[[str, str], None]
Item = tuple[str, "bytes | InputError"]


class InputError(SmtplensError, OSError):
    """A mail file could not be read; ``path`` names it, ``problem`` says why."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def _ignore(name: str, message: str) -> None:
    """The default warning handler: warnings are dropped (the CLI passes its own)."""


def expand(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """The files (and ``-`` for stdin) that ``iter_mails`` would read, in order; directories searched
    recursively in name order, the ``tmp`` folder of a Maildir (mails still being delivered) left out."""
    out: list[str] = []
    for path in paths:
        name = os.fspath(path)
        if name != STDIN and os.path.isdir(name):
            out.extend(_walk(name))
        else:
            out.append(name)
    return out


def _walk(top: str) -> Iterator[str]:
    for root, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        if "cur" in dirs and "new" in dirs and "tmp" in dirs:
            dirs.remove("tmp")
        for name in sorted(files):
            if not name.startswith("."):
                yield os.path.join(root, name)


def iter_mails(
    paths: Iterable[str | os.PathLike[str]],
    *,
    limit: int = DEFAULT_LIMIT,
    on_warning: WarningHandler | None = None,
) -> Iterator[Item]:
    """Every mail under ``paths`` as ``(name, bytes)``, or ``(name, InputError)`` for a file that cannot be read.

    ``name`` is the file's path; a mail of an mbox file with several mails is ``path#n`` (n from 1), ``-`` is
    stdin. ``on_warning(name, message)`` hears of mails cut at ``limit`` bytes.
    """
    warn = on_warning or _ignore
    for path in paths:
        name = os.fspath(path)
        if name == STDIN:
            yield from _read_stream(sys.stdin.buffer, STDIN, limit, warn)
        else:
            yield from _read_path(name, limit, warn)


def _read_path(name: str, limit: int, warn: WarningHandler) -> Iterator[Item]:
    """The mails of a file, or of every file below a directory (as :func:`expand` lists them).

    The usual mail is read with bare system calls (open, one or two reads, close): no file object is made unless
    there is more to read than the first piece. A directory is found by trying, not by asking first.
    """
    size = min(_FIRST, limit)
    try:
        fd = os.open(name, os.O_RDONLY)
    except IsADirectoryError:
        yield from _read_directory(name, limit, warn)
        return
    except OSError as exc:
        yield name, InputError(name, exc.strerror or type(exc).__name__)
        return
    try:
        first = _read_fd(fd, size)
    except IsADirectoryError:
        os.close(fd)
        yield from _read_directory(name, limit, warn)
        return
    except OSError as exc:
        os.close(fd)
        yield name, InputError(name, exc.strerror or type(exc).__name__)
        return
    if len(first) < size and not first.startswith(b"From "):
        os.close(fd)
        yield name, first  # a whole mail, read in one piece
        return
    with open(fd, "rb", buffering=0) as stream:  # closes fd
        try:
            yield from _read_stream(stream, name, limit, warn, first)
        except OSError as exc:
            yield name, InputError(name, exc.strerror or type(exc).__name__)


def _read_directory(name: str, limit: int, warn: WarningHandler) -> Iterator[Item]:
    for file in _walk(name):
        yield from _read_path(file, limit, warn)


def _read_fd(fd: int, size: int) -> bytes:
    """Up to ``size`` bytes of a file descriptor; fewer only at its end (a pipe may return less at a time)."""
    data = os.read(fd, size)
    while len(data) < size:
        more = os.read(fd, size - len(data))
        if not more:
            break
        data += more
    return data


def _read_upto(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes; fewer only at the end of the stream (an unbuffered read of a pipe may return less)."""
    data = stream.read(size) or b""
    while len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            break
        data += more
    return data


def _read_stream(
    stream: BinaryIO, name: str, limit: int, warn: WarningHandler, first: bytes | None = None
) -> Iterator[Item]:
    """The mail or mails of a stream; ``first`` is what was read of it already."""
    if first is None:
        first = _read_upto(stream, min(_FIRST, limit))
    whole = len(first) < min(_FIRST, limit)  # less than asked for: the end of the file
    if whole and first.startswith(b"From ") and b"\r" in first and b"\n" not in first:
        first = first.replace(b"\r", b"\n")  # an mbox with old Mac line ends (CR alone): its lines as any mbox's
    if first.startswith(b"From ") and not (whole and b"\nFrom " not in first):
        if not isinstance(stream, io.BufferedIOBase):
            stream = io.BufferedReader(stream)  # type: ignore[type-var]  # mbox lines are read
        yield from _read_mbox(stream, first, name, limit, warn)
        return
    if whole:
        yield name, first  # (an mbox of one mail is read as it is: the mail reader skips its "From " line)
        return
    data = first + _read_upto(stream, limit - len(first))
    if stream.read(1):
        warn(name, f"larger than {limit} bytes: only the first {limit} bytes were read")
    yield name, data


def _read_mbox(stream: BinaryIO, first: bytes, name: str, limit: int, warn: WarningHandler) -> Iterator[Item]:
    """The mails of an mbox file: each begins with a ``From `` line at the start of the file or after a blank
    line (RFC 4155). A file with one mail is named by its path alone. ``first`` is what was read already."""
    lines = io.BytesIO(first)
    yield from _mbox_mails(lambda: lines.readline(_CHUNK) or stream.readline(_CHUNK), name, limit, warn)


def _mbox_mails(readline: Callable[[], bytes], name: str, limit: int, warn: WarningHandler) -> Iterator[Item]:
    held: bytes | None = None  # the first mail, held back until we know whether a second one follows
    count = 0
    chunks: list[bytes] = []
    size = 0
    cut = False
    at_line_start = False
    blank_before = False
    while True:
        piece = readline()
        if not piece:
            break
        starts_mail = (
            at_line_start and piece.startswith(b"From ") and (blank_before or _SEPARATOR.match(piece) is not None)
        )
        if at_line_start:
            blank_before = piece in (b"\n", b"\r\n")
        at_line_start = piece.endswith(b"\n")
        if starts_mail:
            count += 1
            mail = _finish(chunks, cut, f"{name}#{count}", limit, warn)
            if count == 1:
                held = mail
            else:
                if held is not None:
                    yield f"{name}#1", held
                    held = None
                yield f"{name}#{count}", mail
            chunks, size, cut = [piece], len(piece), False
            continue
        if size + len(piece) > limit:
            if not cut:
                chunks.append(piece[: limit - size])
                size = limit
            cut = True
            continue
        chunks.append(piece)
        size += len(piece)
    count += 1
    last = _finish(chunks, cut, f"{name}#{count}" if count > 1 else name, limit, warn)
    if count == 1:
        yield name, last
        return
    if held is not None:
        yield f"{name}#1", held
    yield f"{name}#{count}", last


def _finish(chunks: list[bytes], cut: bool, name: str, limit: int, warn: WarningHandler) -> bytes:
    data = b"".join(chunks)
    if data.endswith(b"\n\n"):
        data = data[:-1]  # the blank line that separates mails belongs to the mbox, not to the mail
    if cut:
        warn(name, f"larger than {limit} bytes: only the first {limit} bytes were read")
    return data
