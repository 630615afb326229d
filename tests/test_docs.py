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


# Parts of format 2 that this version refuses with an error of its own rather than errors.NOT_YET's
# "not supported yet" (key -> a spec using it). docs/spec-format.md marks them not yet supported.
OTHER_GAPS: dict[str, str] = {}


def _not_yet_notes():
    text = (ROOT / "docs/spec-format.md").read_text(encoding="utf-8")
    return {key for keys in re.findall(r"<!-- not-yet: ([^>]*?) -->", text) for key in keys.split()}


def test_not_yet_notes_follow_the_code():
    """Each part of format 2 that eqcell refuses as not supported yet is marked so in the spec
    reference, and a note whose part now works is gone (implementing a part: delete its
    errors.NOT_YET entry and the "Not yet supported" note with its `not-yet` comment)."""
    from eqcell.errors import NOT_YET

    notes = _not_yet_notes()
    unmarked = set(NOT_YET) - notes
    assert not unmarked, f"docs/spec-format.md: mark as not yet supported: {sorted(unmarked)}"
    stale = notes - set(NOT_YET) - set(OTHER_GAPS)
    assert not stale, (f"docs/spec-format.md marks {sorted(stale)} as not yet supported, but eqcell "
                       "no longer refuses it: delete the note and its not-yet comment")

