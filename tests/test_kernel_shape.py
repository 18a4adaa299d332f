"""The kernel's shape stays readable: short functions, no mode switches, no config schema at run time."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from helpers import subprocess_env

import stresslab

MARKET = Path(stresslab.__file__).resolve().parent / "market"
MAX_LINES = 80


def test_no_function_in_the_market_package_is_longer_than_80_lines() -> None:
    long = []
    for path in sorted(MARKET.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.name}:{node.name} ({lines} lines)")
    assert not long, long


def test_the_kernel_never_asks_which_rules_it_has() -> None:
    """Hard and smooth decisions are methods of ``static.rules``; the step code never branches on the mode."""
    asks = [f"{path.name}:{n}" for path in sorted(MARKET.glob("*.py"))
            for n, line in enumerate(path.read_text().splitlines(), 1)
            if re.search(r"\b(static|rules)\.smooth\b|isinstance\([^)]*\b(Hard|Smooth)\b", line)]
    assert not asks, asks


def test_the_kernel_does_not_import_the_config_schema() -> None:
    code = ("import sys, stresslab.market.model, stresslab.engine.scan; "
            "print(sorted(m for m in sys.modules if m.startswith('pydantic') or m == 'stresslab.config.schema'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=subprocess_env())
    assert done.stdout.strip() == "[]", done.stdout
