"""The import direction between apps is a contract (pyproject.toml, [tool.importlinter]):
the shared core imports no app, domain apps never import api or chacra, and apps
import only downward (chacra → api → insights, screening → traceability, nurseries →
plots → core), and api reaches an app only through its public modules (models,
selectors, services, imports, errors; core.policy for access). Running it here
makes ./scripts/test check it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_it_keeps_every_import_contract():
    # The virtualenv's lint-imports, beside this interpreter; from the repository
    # root, where it finds pyproject.toml and the apps.
    lint = Path(sys.executable).with_name("lint-imports")
    command = [str(lint) if lint.exists() else shutil.which("lint-imports") or "lint-imports", "--no-cache"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
    # Every contract ran (a contract dropped from pyproject.toml would pass silently).
    assert "Contracts: 4 kept, 0 broken." in done.stdout, done.stdout
    assert "api uses only the apps' public selectors, services, models and layers KEPT" in done.stdout
