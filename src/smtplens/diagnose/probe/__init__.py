"""``probe()``: walk a mail server through an SMTP session the way a sending MTA would, and say what went wrong.

The target is a host (``HOST``, ``HOST:PORT``, ``[IPv6]:PORT``, an IP address) or a mail domain, whose MX hosts
are tried in preference order (RFC 5321 section 5.1; a domain without MX is its own implicit MX, a null MX
``0 .`` means it takes no mail at all, RFC 7505) until one answers with a greeting. Each try is an
:class:`Attempt` whose :class:`Step` list is the session transcript: connect, greeting, EHLO (HELO if EHLO is
refused), STARTTLS and EHLO again, MAIL, RCPT, DATA and the end of data when asked, QUIT. The probe keeps SMTP's
manners: after a 554 greeting it sends only QUIT (section 3.1), after any 421 it sends nothing more and lets the
server close (section 3.8), and it never sends DATA without an accepted recipient (section 3.3).

Every 4yz or 5yz reply is explained by :func:`smtplens.classify` for its stage; :func:`assess` turns the
attempts into the report's verdict and findings without touching the network.

The parts, one concept each: :mod:`.target` (what to probe), :mod:`.options` (the checked options),
:mod:`.plan` (where to connect), :mod:`.session` (one SMTP session), :mod:`.model` (steps, attempts, the
report), :mod:`.verdict` (:func:`assess`: the verdict and findings) and :mod:`.run` (the entry point).
"""

from __future__ import annotations

from smtplens.diagnose.probe.model import Attempt, ProbeReport, Step, StepName
from smtplens.diagnose.probe.plan import ProbeError
from smtplens.diagnose.probe.run import MAX_ATTEMPTS, probe
from smtplens.diagnose.probe.session import CLOSE_WAIT as CLOSE_WAIT
from smtplens.diagnose.probe.session import probe_message
from smtplens.diagnose.probe.target import ProbeInputError, Target, parse_target
from smtplens.diagnose.probe.verdict import assess
from smtplens.diagnose.smtp_client import Timeouts

__all__ = [
    "MAX_ATTEMPTS",
    "Attempt",
    "ProbeError",
    "ProbeInputError",
    "ProbeReport",
    "Step",
    "StepName",
    "Target",
    "Timeouts",
    "assess",
    "parse_target",
    "probe",
    "probe_message",
]
