"""Golden files pin the generated text of every shipped spec and target, byte for byte.

Refresh on purpose with `pytest tests/test_golden.py --update-golden`, then read the diff."""
import pytest

import eqcell
from conftest import GOLDEN, SHIPPED, TARGETS


def golden_path(spec, target):
    return GOLDEN / f"{spec.stem}.{target}.py"


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("spec", SHIPPED, ids=lambda p: p.stem)
def test_golden(spec, target, update_golden):
    golden = golden_path(spec, target)
    code = eqcell.generate(spec, target=target)
    if update_golden:
        golden.write_text(code, encoding="utf-8")
    assert golden.exists(), f"no golden file for {spec.stem} ({target}); run with --update-golden"
    assert code == golden.read_text(encoding="utf-8")


def test_no_stale_golden_files():
    expected = {golden_path(spec, target).name for spec in SHIPPED for target in TARGETS}
    present = {p.name for p in GOLDEN.glob("*.py")}
    assert present == expected, f"stale: {sorted(present - expected)}, missing: {sorted(expected - present)}"


@pytest.mark.parametrize("spec", SHIPPED, ids=lambda p: p.stem)
def test_shipped_name_equals_path(spec):
    assert eqcell.generate(spec.stem) == eqcell.generate(spec)


@pytest.mark.parametrize("target", TARGETS)
def test_precompiled_template_is_fresh(target, update_golden):
    """The precompiled template is made from the template's current text (render ignores a stale
    one, so this only guards generation speed), and rendering through it gives the golden bytes."""
    from eqcell.render import _template, precompile_template
    path, text = precompile_template(target)
    if update_golden:
        path.write_text(text, encoding="utf-8")
    assert path.exists() and path.read_text(encoding="utf-8").splitlines()[0] == text.splitlines()[0], \
        "stale precompiled template: run pytest tests/test_golden.py --update-golden"
    from eqcell.render import _environment, build_context
    ir = eqcell.analyze("gru")
    fresh = _environment().get_template(f"{target.replace('-', '_')}/module.py.j2")
    assert _template(target).render(c=build_context(ir, target)) == fresh.render(c=build_context(ir, target))
