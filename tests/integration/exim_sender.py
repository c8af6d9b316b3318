"""A real Exim as a sending MTA, to read the notices it writes when a receiving server refuses mail.

Debian's Exim package conflicts with Postfix (each is the system's MTA), so CI unpacks it beside the system
instead of installing it (``.ci/run``: ``dpkg -x`` into ``/opt/smtplens-lab/exim``, with the libraries it links
and the ``Debian-exim`` user it runs as); an installed ``/usr/sbin/exim4`` serves as well. No Exim daemon runs:
each message is handed to ``exim4 -C CONFIG -odi`` on standard input, which delivers it at once to
``[127.0.0.1]:PORT`` (the server under test) and, when that refuses it, writes its notice to the sender, whose
domain is a Maildir of the ``appendfile`` transport. The configuration has no retry rules, so a temporary refusal
is final (Exim: "retry timeout exceeded"). With ``-C`` Exim gives up root and runs as its own user, which owns
the instance's directories.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from smtplens.bounce import Recipient
from tests.integration.conftest import _unavailable, need_root
from tests.integration.notices import wait_for_notices

__all__ = ["EXIM_USER", "SENDER_DOMAIN", "EximSender", "exim_sender", "need_exim"]

SENDER_DOMAIN = "sender.lab.test"
EXIM_USER = "Debian-exim"  # the user Debian's Exim is built to run as
UNPACKED = Path("/opt/smtplens-lab/exim/usr/sbin/exim4")  # where .ci/run unpacks the package


def need_exim() -> str:
    """The Exim program: ``$SMTPLENS_EXIM``, the unpacked package or an installed one; fails in CI, skips
    elsewhere when there is none or its user is missing."""
    candidates = [os.environ.get("SMTPLENS_EXIM", ""), str(UNPACKED), "/usr/sbin/exim4"]
    program = next((path for path in candidates if path and os.access(path, os.X_OK)), None)
    if program is None:
        _unavailable("Exim is not there; .ci/run unpacks Debian's exim4-daemon-light into /opt/smtplens-lab/exim")
    try:
        pwd.getpwnam(EXIM_USER)
    except KeyError:
        _unavailable(f"Exim's user {EXIM_USER} does not exist; .ci/run creates it")
    return str(program)


def exim_conf(program: str, home: Path, relay_port: int, *, retry: str = "", main: str = "") -> str:
    """The configuration: ``main`` adds main-section settings, ``retry`` the retry rules (none by default)."""
    return f"""\
{main}
exim_path = {program}
primary_hostname = exim.{SENDER_DOMAIN}
qualify_domain = {SENDER_DOMAIN}
spool_directory = {home / "spool"}
log_file_path = {home / "log"}/%slog
daemon_smtp_ports = 0
trusted_users = root

begin routers
sender_domain:
  driver = accept
  domains = {SENDER_DOMAIN}
  transport = notices
everything_else:
  driver = manualroute
  route_list = * 127.0.0.1
  transport = to_server
  self = send

begin transports
to_server:
  driver = smtp
  port = {relay_port}
  allow_localhost
notices:
  driver = appendfile
  directory = {home / "notices"}
  maildir_format
  create_directory
  user = {EXIM_USER}
  group = {EXIM_USER}

begin retry
{retry}
"""


@dataclass(frozen=True)
class EximSender:
    program: str
    home: Path

    def send(self, sender: str, recipients: list[str], message: bytes) -> None:
        """Hand a message to Exim, which tries to deliver it before it returns (``-odi``)."""
        done = subprocess.run(
            [self.program, "-C", str(self.home / "exim.conf"), "-odi", "-f", sender, "--", *recipients],
            input=message,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (done.stdout, done.stderr, self.log())

    def run_queue(self) -> None:
        """``exim -qff``: try every queued message again now, frozen ones too."""
        done = subprocess.run(
            [self.program, "-C", str(self.home / "exim.conf"), "-qff"], capture_output=True, timeout=60, check=False
        )
        assert done.returncode == 0, (done.stdout, done.stderr, self.log())

    def log(self) -> str:
        path = self.home / "log" / "mainlog"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    @property
    def maildir(self) -> Path:
        return self.home / "notices"

    def notices(self, recipients: int) -> list[Recipient]:
        """The recipients of the notices delivered so far, sorted by address, once there are ``recipients``."""
        return wait_for_notices(self.maildir, recipients, self.log)


@contextlib.contextmanager
def exim_sender(relay_port: int, *, retry: str = "", main: str = "") -> Iterator[EximSender]:
    """An Exim instance (configuration, spool, log and Maildir in a directory of its own) relaying to
    ``[127.0.0.1]:relay_port``, with ``retry`` rules and ``main`` settings added to its configuration; the
    directory is removed at the end. Needs root."""
    program = need_exim()
    need_root("Exim")
    user = pwd.getpwnam(EXIM_USER)
    home = Path(tempfile.mkdtemp(prefix="smtplens-exim-"))
    try:
        home.chmod(0o755)
        for name in ("spool", "log", "notices"):
            (home / name).mkdir()
            os.chown(home / name, user.pw_uid, user.pw_gid)
        (home / "exim.conf").write_text(exim_conf(program, home, relay_port, retry=retry, main=main), encoding="utf-8")
        yield EximSender(program, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
