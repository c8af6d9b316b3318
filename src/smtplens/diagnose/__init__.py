"""Live diagnosis: DNS-based checks (SPF, DMARC, DKIM, DNSBL, MX, PTR) and SMTP probes.

Every check takes an injected resolver (:class:`smtplens.diagnose.dns.Resolver`); nothing here reads global DNS
configuration on its own.
"""
