"""The compiled bounce modules (smtplens._accel: mime, rfc3464, the bounce package) decode exactly as the pure ones.

Every mail of tests/fixtures/bounces and of ../shared/corpus/sisimai/maildir (when present) is decoded in this
process (compiled where built) and in one with ``SMTPLENS_PURE=1``; the JSON of each result (``bounce --json``'s
fields, the classifier's verdict included) must be the same. Outside CI the test is skipped when the modules are
not built (no C compiler); in CI they must be built.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from smtplens import _accel
from smtplens.bounce import decode_bounce
from smtplens.bounce.mime import Headers, Mail, Part, parse_mail
from tests.conftest import FIXTURES, IN_CI, SHARED

BOUNCE_MODULES = ("mime", "rfc3464", "bounce")


def _mails() -> list[str]:
    """The paths of the fixtures' and the shared corpus's mails, in a fixed order."""
    paths = sorted(FIXTURES.joinpath("bounces").glob("*.eml"))
    corpus = SHARED / "corpus" / "sisimai" / "maildir"
    if corpus.exists():
        paths += sorted(p for p in corpus.rglob("*") if p.is_file())
    return [str(p) for p in paths]


def _require_compiled() -> None:
    paths = _accel.status()
    missing = {name: paths[name] for name in BOUNCE_MODULES if paths[name] != "compiled"}
    if missing:
        if IN_CI and _accel.PURE_ENV not in os.environ:
            pytest.fail(f"the compiled bounce modules are not in use in CI: {missing}")
        pytest.skip(f"not compiled: {missing}")


_PURE_RUN = """
import json, sys
from pathlib import Path
from smtplens._accel import status
from smtplens.bounce import decode_bounce
assert set(status().values()) == {"pure (SMTPLENS_PURE is set)"}, status()
json.dump([decode_bounce(Path(p).read_bytes()).to_dict() for p in json.load(sys.stdin)], sys.stdout)
"""


def test_a_pure_process_decodes_every_mail_alike() -> None:
    _require_compiled()
    paths = _mails()
    run = subprocess.run(
        [sys.executable, "-c", _PURE_RUN],
        input=json.dumps(paths),
        env={**os.environ, _accel.PURE_ENV: "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    pure = json.loads(run.stdout)
    assert len(pure) == len(paths)
    for path, theirs in zip(paths, pure, strict=True):
        with open(path, "rb") as mail:
            ours = json.loads(json.dumps(decode_bounce(mail.read()).to_dict()))
        assert ours == theirs, path


def test_the_mime_classes_are_one_set() -> None:
    """The compiled build's classes replace the pure module's, so every Mail, Part and Headers is of one class."""
    _require_compiled()
    mail = parse_mail(b"From: a@example.org\nSubject: x\n\nbody\n")
    assert type(mail) is Mail
    assert type(mail.root) is Part
    assert type(mail.root.headers) is Headers
    assert _accel.is_compiled(parse_mail)
