"""Plain and LaTeX spellings of S-LSTM give the same generated module, byte for byte (both targets)."""
from pathlib import Path

import pytest
import yaml

import eqcell

SHIPPED = Path(__file__).resolve().parent.parent / "specs" / "slstm.yaml"

# The LaTeX block is verbatim from the seed article: Unicode minus signs (U+2212) in `t−1` and
# `1−f_t`, `\otimes`, `&=`, `\\` line breaks, unbraced subscripts (`W_fx_t`, `R_ch_{t−1}`).
LATEX_SPEC = r"""eqcell: 1
name: SLSTMCell
layer: SLSTM
description: |
  Simplified LSTM (S-LSTM) of Wu & King (2016), as the seed article writes it.
  Z. Wu and S. King, "Investigating gated recurrent networks for speech synthesis", ICASSP 2016.
  One forget gate f couples forgetting and writing (c = f c + (1 - f) candidate); no input or
  output gate, so half the weights of an LSTM. Defaults follow the article's hand-written cell:
  activation tanh, recurrent activation hard_sigmoid.
activations:
  activation: tanh
  recurrent_activation: {symbol: sigmoid, default: hard_sigmoid}
equations: |
  f_t &=\sigma(W_fx_t+R_fh_{t−1}+b_f) \\
  c_t &=f_t \otimes c_{t−1}+ (1−f_t) \otimes \tanh (W_c x_t+R_ch_{t−1}+b_c) \\
  h_t &=\tanh (c_t)
"""

TARGETS = ["keras", "tf-keras"]


def test_latex_spec_is_the_shipped_spec_but_for_the_equations():
    """Guard: if specs/slstm.yaml changes its name, activations or description, update LATEX_SPEC."""
    latex = yaml.safe_load(LATEX_SPEC)
    plain = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    assert "\u2212" in latex["equations"] and "\\otimes" in latex["equations"]
    latex.pop("equations"), plain.pop("equations")
    assert latex == plain


@pytest.mark.parametrize("target", TARGETS)
def test_latex_and_plain_files_generate_identical_modules(tmp_path, target):
    plain_file = tmp_path / "slstm_plain.yaml"
    latex_file = tmp_path / "slstm_from_paper_latex.yaml"
    plain_file.write_text(SHIPPED.read_text(encoding="utf-8"), encoding="utf-8")
    latex_file.write_text(LATEX_SPEC, encoding="utf-8")

    shipped = eqcell.generate("slstm", target=target)
    from_plain = eqcell.generate(str(plain_file), target=target)
    from_latex = eqcell.generate(str(latex_file), target=target)
    assert from_plain == shipped
    assert from_latex == shipped
    # Path objects too
    assert eqcell.generate(latex_file, target=target) == shipped


@pytest.mark.parametrize("target", TARGETS)
def test_latex_and_plain_yaml_text_generate_identical_modules(target):
    shipped = eqcell.generate("slstm", target=target)
    assert eqcell.generate(SHIPPED.read_text(encoding="utf-8"), target=target) == shipped
    assert eqcell.generate(LATEX_SPEC, target=target) == shipped


def test_latex_and_plain_have_the_same_content_hash():
    assert eqcell.analyze(LATEX_SPEC).digest == eqcell.analyze("slstm").digest
