"""The user's documents link only to files inside the repository, and those files exist."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ["README.md", "docs/spec-format.md", "benchmarks/README.md"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


@pytest.mark.parametrize("document", DOCUMENTS)
def test_links_point_inside_the_repository(document):
    path = ROOT / document
    targets = LINK.findall(path.read_text(encoding="utf-8"))
    for target in targets:
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor in the same page
        resolved = (path.parent / target.split("#")[0]).resolve()
        assert resolved.is_relative_to(ROOT), f"{document}: {target} points outside the repository"
        assert resolved.exists(), f"{document}: {target} does not exist"


def test_readme_links_the_spec_reference():
    assert "](docs/spec-format.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
