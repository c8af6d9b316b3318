"""``python -m smtplens``: the ``smtplens`` command, for environments where its script is not on the PATH."""

from smtplens.cli.main import run

if __name__ == "__main__":
    run()
