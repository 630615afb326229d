"""Golden files pin the generated text of every shipped spec and target, byte for byte.

Refresh on purpose with `pytest tests/test_golden.py --update-golden`, then read the diff."""
import pytest

import eqcell
from conftest import GOLDEN, SHIPPED, TARGETS
from eqcell.errors import SpecError


def golden_path(spec, target):
    return GOLDEN / f"{spec.stem}.{target}.py"


def _written(spec, target):
    """Whether `target` writes `spec` (every target writes every shipped spec today)."""
    try:
        eqcell.generate(spec, target=target)
        return True
    except SpecError:
        return False


CASES = [(spec, target) for spec in SHIPPED for target in TARGETS if _written(spec, target)]


@pytest.mark.parametrize(("spec", "target"), CASES, ids=[f"{s.stem}-{t}" for s, t in CASES])
def test_golden(spec, target, update_golden):
    golden = golden_path(spec, target)
    code = eqcell.generate(spec, target=target)
    if update_golden:
        golden.write_text(code, encoding="utf-8")
    assert golden.exists(), f"no golden file for {spec.stem} ({target}); run with --update-golden"
    assert code == golden.read_text(encoding="utf-8")


def test_no_stale_golden_files():
    expected = {golden_path(spec, target).name for spec, target in CASES}
    present = {p.name for p in GOLDEN.glob("*.py")}
    assert present == expected, f"stale: {sorted(present - expected)}, missing: {sorted(expected - present)}"


@pytest.mark.parametrize("spec", SHIPPED, ids=lambda p: p.stem)
def test_shipped_name_equals_path(spec):
    assert eqcell.generate(spec.stem) == eqcell.generate(spec)
