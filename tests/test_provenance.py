"""Where a result came from: the commit of the code (checkout, VCS install or none), the command and the config."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest

from stresslab import provenance

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class _Distribution:
    def __init__(self, direct_url: dict | None) -> None:
        self._text = None if direct_url is None else json.dumps(direct_url)

    def read_text(self, name: str) -> str | None:
        assert name == "direct_url.json"
        return self._text


def test_a_checkout_gives_its_commit() -> None:
    found = provenance.commit()
    assert found is not None and len(found) == provenance.COMMIT_LENGTH  # the tests run from a git checkout
    assert provenance.commit_attrs() == {"git_commit": found}


@pytest.mark.parametrize(("direct_url", "expected"), [
    ({"url": "https://github.com/x/stresslab", "vcs_info": {"vcs": "git", "commit_id": COMMIT}}, COMMIT),
    ({"url": "file:///src/stresslab", "dir_info": {"editable": True}}, None),
    (None, None),
])
def test_an_install_gives_the_commit_pip_recorded_or_none(direct_url: dict | None, expected: str | None,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provenance, "_checkout_commit", lambda: None)
    monkeypatch.setattr(metadata, "distribution", lambda name: _Distribution(direct_url))
    assert provenance.commit() == expected
    assert provenance.commit_attrs() == ({"git_commit": expected} if expected else {})


def test_not_installed_and_no_checkout_gives_no_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(provenance, "_checkout_commit", lambda: None)
    monkeypatch.setattr(metadata, "distribution", missing)
    assert provenance.commit_attrs() == {}


def test_command_and_config_name_from_the_command_line() -> None:
    script = str(Path("/venv/bin/stresslab"))
    module = str(Path(provenance.__file__).with_name("cli.py"))
    run = [script, "run", "--paths", "10", "configs/crypto_long_squeeze.toml", "--out", "x.nc"]
    assert provenance.command(run) == "stresslab run --paths 10 configs/crypto_long_squeeze.toml --out x.nc"
    assert provenance.config_name(run) == "crypto_long_squeeze"
    assert provenance.config_name([module, "run", "a/b/squeeze.yaml"]) == "squeeze"
    assert provenance.command(["/usr/bin/pytest", "-q"]) == "stresslab.simulate"
    assert provenance.config_name(["/usr/bin/pytest", "run", "x.toml"]) is None
    assert provenance.config_name([script, "report", "x.nc"]) is None
    assert provenance.now().endswith("Z") and "T" in provenance.now()
