"""SPF (RFC 7208): parse records, expand macros and evaluate check_host() over an injected DNS resolver.

```python
from smtplens.diagnose.spf import check_host, mail_from_identity

sender, domain = mail_from_identity("bob@example.com", helo="mail.example.net")
result = await check_host("192.0.2.1", domain, sender, helo="mail.example.net", resolver=resolver)
result.result, result.explanation, result.mechanism, result.lookups, result.problems
```
"""

from smtplens.diagnose.spf.errors import SpfError, SpfSyntaxError
from smtplens.diagnose.spf.evaluate import check_host, mail_from_identity
from smtplens.diagnose.spf.macro import expand, parse_macro_string
from smtplens.diagnose.spf.record import (
    DomainSpec,
    Mechanism,
    Modifier,
    Qualifier,
    SpfRecord,
    is_spf_record,
    parse_domain_spec,
    parse_record,
    spf_records,
)
from smtplens.diagnose.spf.result import SpfLimits, SpfOutcome, SpfResult

__all__ = [
    "DomainSpec",
    "Mechanism",
    "Modifier",
    "Qualifier",
    "SpfError",
    "SpfLimits",
    "SpfOutcome",
    "SpfRecord",
    "SpfResult",
    "SpfSyntaxError",
    "check_host",
    "expand",
    "is_spf_record",
    "mail_from_identity",
    "parse_domain_spec",
    "parse_macro_string",
    "parse_record",
    "spf_records",
]
