"""The `chacra` console script: help everywhere, hyphenated subcommands."""

import subprocess
from pathlib import Path

import pytest

CHACRA = str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "chacra")


def run(*args):
    return subprocess.run([CHACRA, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args,words", [
    (("help",), "demo_data"),
    (("demo-data", "--help"), "3,000 plots"),
    (("db", "--help"), "private PostgreSQL/PostGIS cluster"),
])
def test_every_command_has_useful_help(args, words):
    out = run(*args)
    assert out.returncode == 0 and words in out.stdout.replace("\n", " ").replace("  ", " ")


def test_bad_arguments_are_refused_in_words():
    out = run("demo-data", "--scale", "-1")
    assert out.returncode != 0 and "--scale must be in (0, 10]" in out.stderr
