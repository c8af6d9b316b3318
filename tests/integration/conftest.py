"""A real-server lab on loopback for the diagnosis tests: rbldnsd, unbound and Postfix, started once per session.

* **rbldnsd** serves every zone of smtplens's blocklist table from zone files: Spamhaus ZEN (SBL, XBL and PBL
  files merged, plus one address answering the 127.255.255.254 refusal code), the Spamhaus DBL, SpamCop and the
  rest empty, so an address that is on none of them is "not listed" everywhere rather than unreachable.
* **unbound** is the one resolver the checks are pointed at: local zones with the test domains and reverse
  records, a stub zone per blocklist pointing at rbldnsd, everything else refused.
* **Postfix** answers by client source address (a CIDR map checked at connection time because
  ``smtpd_delay_reject = no``): 127.0.0.2 gets a 554 greeting, 127.0.0.3 a 421 greeting and a hang-up, any other
  address 220; and by recipient (an access map): ``blocked@`` gets 554 and ``busy@`` 421 at RCPT.

Every program gets a free port on 127.0.0.1 chosen at run time, its configuration in a private directory and is
stopped by its PID at the end. Nothing listens on or talks to any other address: the test domains and IPs exist
only inside unbound (TEST-NET addresses of RFC 5737, the ``.test`` names of RFC 6761), and every mail host in
them resolves to 127.0.0.1. A missing program fails the tests in CI and skips them elsewhere, naming the package.
"""

from __future__ import annotations

import base64
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from smtplens.diagnose import dnsbl
from smtplens.diagnose.dns import DnspythonResolver
from tests.conftest import IN_CI

LAB_PACKAGES = (
    "unbound rbldnsd postfix swaks bind9-dnsutils openssl chromium spamassassin spamd rspamd libsasl2-modules"
)
INSTALL_HINT = (
    "echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections && "
    f"apt-get install -y --no-install-recommends {LAB_PACKAGES}"
)
START_TIMEOUT = 20.0

# --- the test data (documentation addresses and .test names; they exist only inside the lab's unbound) ---------

LISTED_IP = "192.0.2.2"  # Spamhaus ZEN (SBL, 127.0.0.2, with TXT) and SpamCop
DOUBLE_LISTED_IP = "192.0.2.10"  # Spamhaus ZEN XBL and PBL at once (127.0.0.4 and 127.0.0.10)
ERROR_IP = "192.0.2.254"  # Spamhaus ZEN answers 127.255.255.254: a refusal, not a listing
CLEAN_IP = "192.0.2.25"  # on no list; PTR CLEAN_PTR, which resolves back to it
CLEAN_PTR = "mail.clean.lab.test"
NO_PTR_IP = "192.0.2.99"  # on no list, no reverse DNS at all
UNCONFIRMED_IP = "192.0.2.50"  # PTR UNCONFIRMED_PTR, whose A record is another address
UNCONFIRMED_PTR = "host50.lab.test"
DBL_LISTED_DOMAIN = "spam-domain.test"

SBL_TXT = "Listed by SBL, see https://check.spamhaus.org/query/ip/$"
XBL_TXT = "Listed by XBL, see https://check.spamhaus.org/query/ip/$"
PBL_TXT = "Listed by PBL, see https://check.spamhaus.org/query/ip/$"
SPAMCOP_TXT = "Blocked - see https://www.spamcop.net/bl.shtml?$"

STRICT_DOMAIN = "strict.lab.test"  # SPF -all, DMARC p=reject adkim=s aspf=s, 2048-bit DKIM key in split TXT
STRICT_SPF = "v=spf1 ip4:192.0.2.0/24 -all"
STRICT_DMARC = "v=DMARC1; p=reject; adkim=s; aspf=s; rua=mailto:dmarc-reports@strict.lab.test"
DKIM_SELECTOR = "s2048"
DEEP_SPF_DOMAIN = "deep.lab.test"  # an include chain of SPF_CHAIN records, over the limit of 10 lookups
SPF_CHAIN = 12
NULL_MX_DOMAIN = "nullmx.lab.test"  # MX 0 . (RFC 7505)
PROBE_DOMAIN = "probe.lab.test"  # MX 10 mx.probe.lab.test -> 127.0.0.1, where Postfix listens
PROBE_MX = "mx.probe.lab.test"

# --- how Postfix answers ---------------------------------------------------------------------------------------

GREETING_554_SOURCE = "127.0.0.2"
GREETING_421_SOURCE = "127.0.0.3"
CLEAN_SOURCE = "127.0.0.4"
RCPT_554_SOURCE = "127.0.0.5"  # any address but .2 and .3 gets 220; one per test keeps their log lines apart
RCPT_421_SOURCE = "127.0.0.6"
SWAKS_SOURCE = "127.0.0.7"
GREETING_554_TEXT = "Service unavailable; Client host [127.0.0.2] blocked using zen.spamhaus.org"
GREETING_421_TEXT = "mx.probe.lab.test Error: too many connections from 127.0.0.3"
RCPT_OK = "ok@probe.lab.test"
RCPT_554 = "blocked@probe.lab.test"
RCPT_421 = "busy@probe.lab.test"
RCPT_554_TEXT = "Access denied"
RCPT_421_TEXT = "mx.probe.lab.test Error: too many connections, try again later"
MAIL_FROM = "sender@strict.lab.test"


# --- programs and ports ----------------------------------------------------------------------------------------


def need(program: str) -> str:
    """The path of ``program``; fails the test in CI and skips it elsewhere when it is not installed."""
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        _unavailable(f"{program} is not installed; {INSTALL_HINT}")
    return str(path)


def need_root(what: str) -> None:
    if os.geteuid() != 0:
        _unavailable(f"{what} needs root (run the integration tests as root, as CI does)")


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


_TAKEN: set[int] = set()


def free_port() -> int:
    """A port on 127.0.0.1 free for both TCP and UDP right now, never handed out twice in one session."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            if port in _TAKEN:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        _TAKEN.add(port)
        return port
    raise RuntimeError("no free port on 127.0.0.1")


@dataclass
class Daemon:
    """A program started by the lab, its log file, and how to stop it by PID."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    pid_file: Path | None = None  # when the real daemon is a child of ``process`` (postfix start-fg)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def assert_running(self) -> None:
        code = self.process.poll()
        if code is not None:
            pytest.fail(f"{self.name} exited with status {code}:\n{self.log_tail()}", pytrace=False)

    def stop(self) -> None:
        if self.pid_file is not None and self.process.poll() is None:
            pid = _read_pid(self.pid_file)
            if pid is not None and _parent_of(pid) == self.process.pid:  # only our own child, never a stale PID
                os.kill(pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(15)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _parent_of(pid: int) -> int | None:
    """The parent PID of ``pid`` from /proc (None if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after "pid (comm)": state, ppid, ...
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None


def start(
    name: str, argv: Sequence[str], log: Path, *, as_nobody: bool = False, pid_file: Path | None = None
) -> Daemon:
    """Start ``argv`` with its output in ``log``; as user nobody when asked and running as root."""
    user: int | None = None
    group: int | None = None
    groups: list[int] | None = None
    if as_nobody and os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        user, group, groups = nobody.pw_uid, nobody.pw_gid, []
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
            group=group,
            extra_groups=groups,
        )
    return Daemon(name, process, log, pid_file)


def wait_until(daemon: Daemon, ready: Callable[[], bool], what: str) -> None:
    """Poll ``ready()`` until it is true; fail with the daemon's log when it exits or the time runs out."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        daemon.assert_running()
        if ready():
            return
        time.sleep(0.1)
    daemon.stop()
    pytest.fail(f"{daemon.name} did not {what} within {START_TIMEOUT:.0f} s:\n{daemon.log_tail()}", pytrace=False)


def dns_query(port: int, name: str, rdtype: str) -> list[str]:
    """The records the server on 127.0.0.1:``port`` answers, as text; without records the rcode's name (such as
    ``["NXDOMAIN"]`` or ``["REFUSED"]``); ``[]`` when no answer came at all."""
    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode

    query = dns.message.make_query(name, rdtype)
    try:
        response = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
    except (dns.exception.Timeout, OSError):
        return []
    records = [item.to_text() for rrset in response.answer for item in rrset]
    return records or [dns.rcode.to_text(response.rcode())]


# --- the lab directory and the DKIM key ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def lab_dir() -> Iterator[Path]:
    """A private directory readable by user nobody (the daemons drop to it), removed at the end."""
    path = Path(tempfile.mkdtemp(prefix="smtplens-lab-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _subdir(parent: Path, name: str, owner: str | None = None) -> Path:
    path = parent / name
    path.mkdir(mode=0o755, parents=True, exist_ok=True)
    if owner is not None and os.geteuid() == 0:
        entry = pwd.getpwnam(owner)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


@pytest.fixture(scope="session")
def dkim_public_key(lab_dir: Path) -> str:
    """A fresh 2048-bit RSA key made with openssl: the base64 SubjectPublicKeyInfo that goes into ``p=``."""
    openssl = need("openssl")
    key = lab_dir / "dkim.pem"
    subprocess.run(
        [openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    der = subprocess.run(
        [openssl, "pkey", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True, timeout=60
    ).stdout
    return base64.b64encode(der).decode("ascii")


# --- rbldnsd: the blocklists -----------------------------------------------------------------------------------

# Zone files per blocklist zone; several files of one zone are merged by rbldnsd. "$" in a TXT is the address.
_BLOCKLIST_FILES: dict[str, dict[str, str]] = {
    "zen.spamhaus.org": {
        "sbl.zone": f":127.0.0.2:{SBL_TXT}\n{LISTED_IP}\n",
        "xbl.zone": f":127.0.0.4:{XBL_TXT}\n{DOUBLE_LISTED_IP}\n",
        "pbl.zone": f":127.0.0.10:{PBL_TXT}\n{DOUBLE_LISTED_IP}\n",
        "refused.zone": f"{ERROR_IP} :127.255.255.254:Query refused, see https://www.spamhaus.org/returnc/pub/\n",
    },
    "dbl.spamhaus.org": {
        "dbl.zone": f":127.0.1.2:Listed by DBL, see https://check.spamhaus.org/query/dbl/$\n{DBL_LISTED_DOMAIN}\n",
    },
    "bl.spamcop.net": {
        "spamcop.zone": f":127.0.0.2:{SPAMCOP_TXT}\n{LISTED_IP}\n",
    },
}


def blocklist_zones() -> tuple[str, ...]:
    """Every zone of smtplens's blocklist table: the lab serves them all (empty where it has no data)."""
    return tuple(item.zone for item in dnsbl.zones())


@dataclass(frozen=True)
class BlocklistServer:
    port: int
    directory: Path


@pytest.fixture(scope="session")
def blocklists(lab_dir: Path) -> Iterator[BlocklistServer]:
    """rbldnsd on 127.0.0.1:PORT (UDP) with the blocklist data; re-reads changed files every 2 s."""
    program = need("rbldnsd")
    home = _subdir(lab_dir, "rbldnsd")
    run_dir = _subdir(home, "run", owner="nobody")
    (home / "empty.zone").write_text("", encoding="ascii")
    zone_args: list[str] = []
    for item in dnsbl.zones():
        files = _BLOCKLIST_FILES.get(item.zone, {"empty.zone": ""})
        for file_name, text in files.items():
            (home / file_name).write_text(text, encoding="ascii")
        kind = "ip4set" if item.supports("ip4") else "dnset"
        zone_args.append(f"{item.zone}:{kind}:{','.join(files)}")
    port = free_port()
    argv = [program, "-n", "-4", "-b", f"127.0.0.1/{port}", "-w", str(home), "-p", str(run_dir / "rbldnsd.pid")]
    daemon = start("rbldnsd", [*argv, "-t", "60", "-c", "2s", *zone_args], home / "rbldnsd.log", as_nobody=True)
    try:
        wait_until(daemon, lambda: dns_query(port, "2.0.0.127.zen.spamhaus.org", "A") != [], "answer DNS queries")
        yield BlocklistServer(port, home)
    finally:
        daemon.stop()


# --- unbound: the resolver -------------------------------------------------------------------------------------


def _txt(name: str, *strings: str) -> str:
    quoted = " ".join(f'"{text}"' for text in strings)
    return f"{name}. 60 IN TXT {quoted}"


def _split(text: str, size: int = 200) -> list[str]:
    """``text`` as DNS character-strings of at most ``size`` octets (one string holds at most 255)."""
    return [text[index : index + size] for index in range(0, len(text), size)]


def _reverse(ip: str) -> str:
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"


def lab_records(dkim_key: str) -> list[str]:
    """The local-data lines of the lab's zones."""
    records = [
        "lab.test. 60 IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 60",
        # a clean sender with forward-confirmed reverse DNS, and one whose PTR name points elsewhere
        f"{CLEAN_PTR}. 60 IN A {CLEAN_IP}",
        f"{_reverse(CLEAN_IP)}. 60 IN PTR {CLEAN_PTR}.",
        f"{UNCONFIRMED_PTR}. 60 IN A 192.0.2.51",
        f"{_reverse(UNCONFIRMED_IP)}. 60 IN PTR {UNCONFIRMED_PTR}.",
        # a strict domain: SPF -all, DMARC reject with strict alignment, a 2048-bit DKIM key in several strings
        f"{STRICT_DOMAIN}. 60 IN MX 10 mx.{STRICT_DOMAIN}.",
        f"mx.{STRICT_DOMAIN}. 60 IN A 127.0.0.1",
        _txt(STRICT_DOMAIN, STRICT_SPF),
        _txt(f"_dmarc.{STRICT_DOMAIN}", STRICT_DMARC),
        _txt(f"{DKIM_SELECTOR}._domainkey.{STRICT_DOMAIN}", *_split(f"v=DKIM1; k=rsa; p={dkim_key}")),
        _txt(f"_smtp._tls.{STRICT_DOMAIN}", f"v=TLSRPTv1; rua=mailto:tls-reports@{STRICT_DOMAIN}"),
        # an SPF include chain longer than the 10 lookups RFC 7208 section 4.6.4 allows
        f"{DEEP_SPF_DOMAIN}. 60 IN MX 10 mx.{DEEP_SPF_DOMAIN}.",
        f"mx.{DEEP_SPF_DOMAIN}. 60 IN A 127.0.0.1",
        _txt(DEEP_SPF_DOMAIN, f"v=spf1 include:i1.{DEEP_SPF_DOMAIN} -all"),
        _txt(f"_dmarc.{DEEP_SPF_DOMAIN}", "v=DMARC1; p=none"),
        # a domain that accepts no mail at all (RFC 7505)
        f"{NULL_MX_DOMAIN}. 60 IN MX 0 .",
        _txt(NULL_MX_DOMAIN, "v=spf1 -all"),
        _txt(f"_dmarc.{NULL_MX_DOMAIN}", f"v=DMARC1; p=reject; rua=mailto:dmarc-reports@{STRICT_DOMAIN}"),
        _txt(f"{NULL_MX_DOMAIN}._report._dmarc.{STRICT_DOMAIN}", "v=DMARC1"),  # RFC 7489 section 7.1
        # the probe target: its MX is Postfix on loopback
        f"{PROBE_DOMAIN}. 60 IN MX 10 {PROBE_MX}.",
        f"{PROBE_MX}. 60 IN A 127.0.0.1",
    ]
    for step in range(1, SPF_CHAIN + 1):
        nxt = f"include:i{step + 1}.{DEEP_SPF_DOMAIN} " if step < SPF_CHAIN else ""
        records.append(_txt(f"i{step}.{DEEP_SPF_DOMAIN}", f"v=spf1 {nxt}ip4:198.51.100.{step} -all"))
    return records


def unbound_config(home: Path, port: int, blocklist_port: int, dkim_key: str) -> str:
    lines = [
        "server:",
        f"    interface: 127.0.0.1@{port}",
        f"    port: {port}",
        "    do-ip4: yes",
        "    do-ip6: no",
        "    do-daemonize: no",
        '    username: ""',
        '    chroot: ""',
        f'    directory: "{home}"',
        f'    pidfile: "{home / "run" / "unbound.pid"}"',
        "    use-syslog: no",
        '    logfile: ""',
        "    verbosity: 1",
        "    access-control: 127.0.0.0/8 allow",
        "    do-not-query-localhost: no",
        '    module-config: "iterator"',
        '    root-hints: ""',
        "    qname-minimisation: no",
        "    cache-max-ttl: 0",
        "    cache-max-negative-ttl: 0",
        '    local-zone: "." refuse',
        '    local-zone: "lab.test." static',
        '    local-zone: "2.0.192.in-addr.arpa." static',
    ]
    lines += [f'    local-zone: "{zone}." transparent' for zone in blocklist_zones()]
    lines += [f"    local-data: '{record}'" for record in lab_records(dkim_key)]
    for zone in blocklist_zones():
        lines += ["stub-zone:", f'    name: "{zone}."', f"    stub-addr: 127.0.0.1@{blocklist_port}"]
    lines += ["remote-control:", "    control-enable: no", ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class DnsLab:
    """The lab's resolver endpoint and what it publishes."""

    port: int
    dkim_public_key: str

    @property
    def server(self) -> str:
        """``127.0.0.1:PORT``, the value of the commands' ``--dns`` option."""
        return f"127.0.0.1:{self.port}"

    def resolver(self) -> DnspythonResolver:
        return DnspythonResolver("127.0.0.1", self.port, timeout=5.0)

    def query(self, name: str, rdtype: str) -> list[str]:
        return dns_query(self.port, name, rdtype)


@pytest.fixture(scope="session")
def dns_lab(lab_dir: Path, blocklists: BlocklistServer, dkim_public_key: str) -> Iterator[DnsLab]:
    """unbound on 127.0.0.1:PORT (UDP and TCP): the test zones, and the blocklists through rbldnsd."""
    program = need("unbound")
    checkconf = need("unbound-checkconf")
    home = _subdir(lab_dir, "unbound")
    _subdir(home, "run", owner="nobody")
    port = free_port()
    config = home / "unbound.conf"
    config.write_text(unbound_config(home, port, blocklists.port, dkim_public_key), encoding="utf-8")
    checked = subprocess.run([checkconf, str(config)], capture_output=True, text=True, timeout=30, check=False)
    if checked.returncode != 0:
        pytest.fail(f"unbound-checkconf rejects the lab config:\n{checked.stdout}{checked.stderr}", pytrace=False)
    daemon = start("unbound", [program, "-d", "-c", str(config)], home / "unbound.log", as_nobody=True)
    expected = "127.0.0.2"
    listed = dnsbl.query_name(LISTED_IP, "zen.spamhaus.org")
    try:
        wait_until(daemon, lambda: dns_query(port, listed, "A") == [expected], "resolve through rbldnsd")
        yield DnsLab(port, dkim_public_key)
    finally:
        daemon.stop()


# --- Postfix: the SMTP peer ------------------------------------------------------------------------------------

POSTFIX_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def postfix_main_cf(home: Path) -> str:
    conf = home / "conf"
    return f"""\
compatibility_level = 3.6
config_directory = {conf}
queue_directory = {home / "queue"}
data_directory = {home / "data"}
maillog_file = {home / "log" / "maillog"}
maillog_file_prefixes = {home}
myhostname = {PROBE_MX}
mydomain = {PROBE_DOMAIN}
myorigin = $mydomain
mydestination = {PROBE_DOMAIN}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
# never trust loopback, or the restrictions below would be bypassed
mynetworks = 127.0.0.100/32
smtp_dns_support_level = disabled
local_transport = discard:
local_recipient_maps =
alias_maps =
alias_database =
biff = no
smtpd_banner = $myhostname ESMTP smtplens lab
# client restrictions at connection time: 554 or 421 instead of the 220 greeting
smtpd_delay_reject = no
smtpd_client_restrictions = check_client_access cidr:{conf / "client.cidr"}
smtpd_recipient_restrictions = check_recipient_access texthash:{conf / "recipient.map"}, reject_unauth_destination
"""


def postfix_maps() -> dict[str, str]:
    return {
        "client.cidr": (
            f"{GREETING_554_SOURCE}/32 554 5.7.1 {GREETING_554_TEXT}\n"
            f"{GREETING_421_SOURCE}/32 421 4.7.0 {GREETING_421_TEXT}\n"
        ),
        "recipient.map": f"{RCPT_554} 554 5.7.1 {RCPT_554_TEXT}\n{RCPT_421} 421 4.7.0 {RCPT_421_TEXT}\n",
    }


@dataclass(frozen=True)
class SmtpLab:
    """Postfix on 127.0.0.1:``port``; ``refused_port`` has nothing listening; ``maillog`` is Postfix's log."""

    port: int
    refused_port: int
    maillog: Path

    def log_mark(self) -> int:
        """The current end of the log, to read only what a test caused."""
        try:
            return self.maillog.stat().st_size
        except FileNotFoundError:
            return 0

    def wait_for_log(self, mark: int, needle: str, timeout: float = 10.0) -> list[str]:
        """The log lines after ``mark`` once one of them contains ``needle`` (Postfix logs asynchronously)."""
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while time.monotonic() < deadline:
            with self.maillog.open("rb") as log:
                log.seek(mark)
                lines = log.read().decode("utf-8", "replace").splitlines()
            if any(needle in line for line in lines):
                return lines
            time.sleep(0.1)
        pytest.fail(f"Postfix did not log {needle!r}; its log since the mark:\n" + "\n".join(lines), pytrace=False)


def _banner(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            return conn.recv(512).startswith(b"220")
    except OSError:
        return False


@pytest.fixture(scope="session")
def smtp_lab(lab_dir: Path) -> Iterator[SmtpLab]:
    """A Postfix instance (``postfix -c DIR start-fg``) whose config, queue, data and log live in the lab."""
    program = need("postfix")
    need_root("Postfix")
    home = _subdir(lab_dir, "postfix")
    conf = _subdir(home, "conf")
    _subdir(home, "queue")
    _subdir(home, "log")
    _subdir(home, "data", owner="postfix")
    port = free_port()
    (conf / "main.cf").write_text(postfix_main_cf(home), encoding="utf-8")
    (conf / "master.cf").write_text(f"127.0.0.1:{port} inet n - n - - smtpd\n{POSTFIX_SERVICES}", encoding="utf-8")
    for name, text in postfix_maps().items():
        (conf / name).write_text(text, encoding="utf-8")
    pid_file = home / "queue" / "pid" / "master.pid"
    daemon = start("postfix", [program, "-c", str(conf), "start-fg"], home / "start.log", pid_file=pid_file)
    try:
        wait_until(daemon, lambda: _banner(port), "greet on its port")
        yield SmtpLab(port, free_port(), home / "log" / "maillog")
    finally:
        daemon.stop()
