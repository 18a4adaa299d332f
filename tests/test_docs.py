"""The repository's own documentation holds together: every link in the README and docs/ resolves, every shipped
config is listed, nothing cites documents the repository does not carry, and the license is the one pyproject.toml
declares."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]+\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#+\s+(.*)$", re.MULTILINE)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _links(document: Path) -> list[str]:
    return [target for target in LINK.findall(document.read_text()) if not re.match(r"[a-z]+:", target)]


def test_the_documents_exist_and_have_links():
    names = {d.name for d in DOCUMENTS}
    assert {"README.md", "model.md", "validation.md", "calibration.md", "adding-a-mechanism.md"} <= names
    assert _links(ROOT / "README.md"), "the README links into docs/"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.name)
def test_every_relative_link_resolves(document):
    broken = []
    for target in _links(document):
        path, _, anchor = target.partition("#")
        file = (document.parent / path).resolve() if path else document
        if not file.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and file.suffix == ".md":
            anchors = {_anchor(h) for h in HEADING.findall(file.read_text())}
            if anchor not in anchors:
                broken.append(f"{target} (no heading #{anchor})")
    assert not broken, f"{document.name}: broken links {broken}"


def test_every_config_path_the_readme_names_exists():
    named = set(re.findall(r"configs/[\w/]+\.toml", (ROOT / "README.md").read_text()))
    assert named
    missing = sorted(name for name in named if not (ROOT / name).is_file())
    assert not missing, f"the README names configs that do not exist: {missing}"


def test_every_shipped_config_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    shipped = sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "configs").rglob("*.toml"))
    assert len(shipped) >= 10
    unlisted = [name for name in shipped if name not in readme]
    assert not unlisted, f"shipped configs the README does not mention: {unlisted}"


def test_nothing_cites_documents_outside_the_repository():
    """The design notes the project started from (MODEL.md, VALIDATION.md, DESIGN.md) are not shipped; the
    repository's own docs/ replace them."""
    cited = []
    tests = [path for path in (ROOT / "tests").glob("*.py") if path.name != "test_docs.py"]
    sources = [*DOCUMENTS, *(ROOT / "configs").rglob("*.toml"), *tests, *(ROOT / "notebooks").glob("*.ipynb"),
               *(ROOT / "stresslab").rglob("*.py")]
    for source in sources:
        for match in re.finditer(r"(?<![\w/])(?:shared/)?(MODEL|VALIDATION|DESIGN)\.md", source.read_text()):
            cited.append(f"{source.relative_to(ROOT)}: {match.group(0)}")
    assert not cited, cited


def test_the_license_file_is_the_declared_license():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert declared == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text


def test_every_function_the_readme_calls_on_the_package_is_importable_from_it():
    """The README teaches ``stresslab.NAME(...)``, never deep modules; each such name exists (loaded lazily)."""
    import stresslab

    called = set(re.findall(r"(?<![/\w])stresslab\.([a-z_]+)(?=[(`])", (ROOT / "README.md").read_text()))
    assert {"simulate", "read", "initialize", "simulate_distributed", "headline"} <= called
    missing = sorted(name for name in called if not callable(getattr(stresslab, name, None)))
    assert not missing, f"the README calls stresslab.{missing}, which the package does not export"
    assert called <= set(stresslab.__all__), sorted(called - set(stresslab.__all__))
