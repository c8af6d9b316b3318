"""The ``smtplens`` entry point: the command group and the one place that turns errors into exit codes."""

from __future__ import annotations

import os
import sys

import click

from smtplens import __version__
from smtplens.cli.bounce import bounce_cmd
from smtplens.cli.check import check_group
from smtplens.cli.codes import code_cmd, codes_cmd, compare_cmd
from smtplens.cli.explain import explain_cmd, reasons_cmd
from smtplens.cli.parse import parse_cmd
from smtplens.cli.probe import probe_cmd
from smtplens.cli.serve import serve_cmd
from smtplens.errors import ParseError, SmtplensError, UnknownCodeError, UnknownLanguageError

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_PROBLEMS = 3  # a check ran and found problems (check ip, check domain)
EXIT_INTERNAL = 70  # EX_SOFTWARE

# Optional packages and the extra that installs each (pyproject.toml): a command that needs one says so.
OPTIONAL_PACKAGES = {
    "dns": "diagnose",
    "cryptography": "diagnose",
    "starlette": "server",
    "uvicorn": "server",
    "prometheus_client": "server",
    "dkim": "server",
    "publicsuffixlist": "server",
}


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The message for a missing optional package, or None when ``exc`` is not about one."""
    package = (exc.name or "").partition(".")[0]
    extra = OPTIONAL_PACKAGES.get(package)
    if extra is None:
        return None
    return f"this needs the optional package {package!r}: pip install 'smtplens[{extra}]'"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="smtplens")
def cli() -> None:
    """smtplens: understand SMTP replies, codes and enhanced status codes."""


cli.add_command(code_cmd)
cli.add_command(compare_cmd)
cli.add_command(codes_cmd)
cli.add_command(parse_cmd)
cli.add_command(explain_cmd)
cli.add_command(reasons_cmd)
cli.add_command(check_group)
cli.add_command(probe_cmd)
cli.add_command(bounce_cmd)
cli.add_command(serve_cmd)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 1 unknown code, failed parse or a check that could not run,
    2 usage error, 3 a check found problems)."""
    try:
        # Without standalone mode, click returns the code of a command's ``click.exceptions.Exit`` (e.g. 3).
        code = cli.main(args=argv, prog_name="smtplens", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool):
            return code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except UnknownLanguageError as exc:
        click.echo(f"smtplens: {exc}", err=True)
        return EXIT_USAGE
    except (UnknownCodeError, ParseError) as exc:
        click.echo(f"smtplens: {exc}", err=True)
        return EXIT_NOT_FOUND
    except SmtplensError as exc:
        click.echo(f"smtplens: {exc}", err=True)
        return EXIT_NOT_FOUND
    except BrokenPipeError:
        sys.stderr.close()
        return EXIT_OK
    except ModuleNotFoundError as exc:
        message = missing_extra(exc)
        if message is None:
            return _internal(exc)
        click.echo(f"smtplens: {message}", err=True)
        return EXIT_NOT_FOUND
    except Exception as exc:
        return _internal(exc)
    return EXIT_OK


def _internal(exc: Exception) -> int:
    """A bug: say so in one line; SMTPLENS_DEBUG=1 shows the traceback."""
    if os.environ.get("SMTPLENS_DEBUG"):
        raise exc
    click.echo(f"smtplens: internal error: {type(exc).__name__}: {exc} (set SMTPLENS_DEBUG=1 for details)", err=True)
    return EXIT_INTERNAL


def run() -> None:
    sys.exit(main())
