"""The compiled accelerator: Cython builds of the hot modules of the classifier and of the bounce decoder, used only
when they match their source.

The modules named in :data:`MODULES` are plain Python and stay the one source of truth. At install time the build
hook (``hatch_build.py``) compiles a copy of each, together with the augmenting ``.pxd`` of C types beside this
file, into ``smtplens._accel.<name>``; the copy records a digest of the ``.py`` and ``.pxd`` it was built from.
At import, each pure module asks :func:`accelerated` for its compiled build and uses its entry points only when
that digest matches the files on disk now. So an edited ``.py`` in an editable install never runs stale compiled
code: it runs interpreted until the next build. ``SMTPLENS_PURE=1`` forces the pure modules.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path
from types import FunctionType, ModuleType

__all__ = [
    "DIGEST_NAME",
    "MODULES",
    "PURE_ENV",
    "accelerated",
    "built_from",
    "install",
    "is_compiled",
    "source_digest",
    "status",
]

MODULES = {
    "reply": "smtplens.reply",
    "matcher": "smtplens.classifier.matcher",
    "engine": "smtplens.classifier.engine",
    "mime": "smtplens.bounce.mime",
    "rfc3464": "smtplens.bounce.decoders.rfc3464",
    "bounce": "smtplens.bounce",
}
"""Compiled module name in ``smtplens._accel`` -> the pure module it is built from."""

PURE_ENV = "SMTPLENS_PURE"
"""Set to anything but "" or "0" to use the pure-Python modules even where compiled ones are built."""

DIGEST_NAME = "__accel_digest__"
"""The attribute of a compiled module that holds the digest of the sources it was built from."""

_HERE = Path(__file__).resolve().parent
_STATUS: dict[str, str] = {}


def source_digest(source: bytes, pxd: bytes) -> str:
    """The digest recorded at build time and checked at import: of a module's ``.py`` and its ``.pxd``."""
    return hashlib.sha256(source + b"\0" + pxd).hexdigest()


def _pure_forced() -> bool:
    return os.environ.get(PURE_ENV, "") not in ("", "0")


def _digest_of(name: str, source_file: str) -> str | None:
    pxd_file = _HERE / f"{name}.pxd"
    try:
        source = Path(source_file).read_bytes()
        pxd = pxd_file.read_bytes() if pxd_file.exists() else b""
    except OSError:
        return None
    return source_digest(source, pxd)


def built_from(module: ModuleType, name: str, source_file: str) -> bool:
    """Whether the compiled ``module`` was built from ``source_file`` as it is now (and from the current .pxd)."""
    built = getattr(module, DIGEST_NAME, None)
    return built is not None and built == _digest_of(name, source_file)


def accelerated(name: str, source_file: str) -> ModuleType | None:
    """The compiled build of the pure module ``smtplens.<...>`` whose source is ``source_file``, or None (run
    interpreted) when ``SMTPLENS_PURE`` is set, nothing was compiled, or the build is of other sources."""
    if _pure_forced():
        _STATUS[name] = f"pure ({PURE_ENV} is set)"
        return None
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ImportError:
        _STATUS[name] = "pure (not compiled)"
        return None
    if not built_from(module, name, source_file):
        _STATUS[name] = "pure (the compiled build is stale: its source changed since the install; reinstall)"
        return None
    _STATUS[name] = "compiled"
    return module


def install(name: str, namespace: dict[str, object], entry_points: tuple[str, ...]) -> bool:
    """Replace ``entry_points`` in the pure module whose globals are ``namespace`` by those of its compiled build,
    when there is a current one (see :func:`accelerated`); whether it did. Does nothing in the compiled copy
    itself, whose name is not the pure module's."""
    if namespace.get("__name__") != MODULES[name]:
        return False
    module = accelerated(name, str(namespace["__file__"]))
    if module is None:
        return False
    for entry in entry_points:
        namespace[entry] = getattr(module, entry)
    return True


def is_compiled(function: object) -> bool:
    """Whether ``function``, a ``def`` of the calling module, was compiled (Cython makes no Python functions): how
    a module tells whether it runs as its compiled build, to take a way that pays only there (a character loop)
    where the interpreted one takes another with the same result."""
    return not isinstance(function, FunctionType)


def status() -> dict[str, str]:
    """Which path each accelerated module runs: ``compiled`` or ``pure (why)``, for benchmarks and reports."""
    for pure in MODULES.values():
        importlib.import_module(pure)
    return {name: _STATUS.get(name, "pure (not loaded)") for name in MODULES}
