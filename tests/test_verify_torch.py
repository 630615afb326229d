"""`eqcell verify --target torch`: every shipped spec's torch module verifies against the equations
(the same numpy interpreter as the Keras targets); broken torch cells and layers (a swapped gate, a
wrong parallel path, a hand-edited layout, a layer that mixes up its directions) exit 1 naming the
check; a hand-written nn.Module cell verifies by its parameters' names."""
import numpy as np
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")

from conftest import SHIPPED  # noqa: E402
from eqcell import analyze, generate  # noqa: E402
from eqcell.cli import cli  # noqa: E402
from eqcell.verify import SPEC_FUNCTIONS, verify  # noqa: E402

BY_DEFAULT = {"lstm_torch", "gru", "mingru", "mlstm", "gla", "deltanet", "rwkv4", "mamba_ssm"}


def run(*args):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("spec", [p.stem if p.stem in BY_DEFAULT else pytest.param(p.stem, marks=pytest.mark.slow)
                                  for p in SHIPPED])
def test_every_shipped_spec_verifies_on_the_torch_target(spec):
    lines = []
    report = verify(spec, target="torch", echo=lines.append)
    assert report.ok, "\n".join(lines)
    text = "\n".join(lines)
    names = {c.name for c in report.checks}
    assert {"weights", "cell step", "cell unbatched", "A layer", "B layer", "C layer", "E gradients"} <= names
    assert ("[parallel]" in text) == (analyze(spec).scan is not None)
    assert "[step loop]" in text and "A cell loop" in names


def test_the_interpreters_sigmoid_is_accurate_where_it_is_tiny():
    """GLA's decay sigmoid(z)^(1/16) at z = -40 is 0.08; 0.5 * (1 + tanh(z / 2)) would make it 0."""
    sigmoid = SPEC_FUNCTIONS["torch"]["sigmoid"]
    z = np.array([-700.0, -40.0, -5.0, 0.0, 5.0, 40.0, 745.0])
    np.testing.assert_allclose(sigmoid(z), torch.sigmoid(torch.tensor(z, dtype=torch.float64)).numpy(),
                               rtol=1e-15, atol=0)


# --- broken modules are caught ---------------------------------------------------------------

def mutant(tmp_path, spec, old, new):
    code = generate(spec, target="torch")
    assert code.count(old) == 1, old
    path = tmp_path / f"{spec}_mutant.py"
    path.write_text(code.replace(old, new))
    return path


def failed_lines(output):
    return [line for line in output.splitlines() if line.startswith("  FAIL")]


def test_a_swapped_gate_fails_the_cell_and_every_layer_case(tmp_path):
    path = mutant(tmp_path, "lstm_torch", "z_i, z_f, z_g, z_o = torch.chunk(z, 4, dim=-1)",
                  "z_f, z_i, z_g, z_o = torch.chunk(z, 4, dim=-1)")
    result = run("verify", "lstm_torch", "--target", "torch", "--module", str(path))
    assert result.exit_code == 1, result.output
    assert "FAIL cell step" in result.output
    assert "differs from the equations first at step t=0" in result.output
    assert all(f"FAIL {case} layer" in result.output for case in "ABCDE")


def test_a_wrong_parallel_path_fails_there_only(tmp_path):
    path = mutant(tmp_path, "mingru", "h = _linear_scan(1 - z, z*htilde, h_tm1, keep, frame)",
                  "h = _linear_scan(1 - z, htilde, h_tm1, keep, frame)")
    result = run("verify", "mingru", "--target", "torch", "--module", str(path))
    assert result.exit_code == 1, result.output
    failed = failed_lines(result.output)
    assert failed and all("[parallel]" in line or "parallel_scan=True" in line for line in failed), failed
    assert "  ok   cell step" in result.output


def test_a_layer_that_runs_both_directions_forwards_is_caught(tmp_path):
    path = mutant(tmp_path, "gru_torch", "output, state = self._run(cell, sequences, state, lengths, reverse=bool(direction))",
                  "output, state = self._run(cell, sequences, state, lengths, reverse=False)")
    result = run("verify", "gru_torch", "--target", "torch", "--module", str(path))
    assert result.exit_code == 1, result.output
    failed = failed_lines(result.output)
    assert {line.split()[1] for line in failed} == {"B", "C"}, failed   # the bidirectional cases


def test_a_hand_edited_symbol_layout_is_caught(tmp_path):
    path = mutant(tmp_path, "mingru", '"W_z": ("weight_ih", 0, self.hidden_size, 0, False),',
                  '"W_z": ("weight_ih", self.hidden_size, 2 * self.hidden_size, 0, False),')
    result = run("verify", "mingru", "--target", "torch", "--module", str(path))
    assert result.exit_code == 1, result.output
    assert "FAIL symbol weights" in result.output and "symbol_weights()['W_z']" in result.output
    assert result.output.count("  FAIL ") == 1


HANDWRITTEN_MINGRU = '''
import torch
from torch import nn


class MinGRUCell(nn.Module):
    """minGRU as one would write it by hand, parameters named as the torch target names them."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__()
        self.weight_ih = nn.Parameter(torch.empty(2 * hidden_size, input_size, device=device, dtype=dtype))
        self.bias_ih = nn.Parameter(torch.zeros(2 * hidden_size, device=device, dtype=dtype))
        nn.init.xavier_uniform_(self.weight_ih)

    def forward(self, input, state=None):
        if state is None:
            state = input.new_zeros(input.shape[:-1] + (self.weight_ih.shape[0] // 2,))
        z, h_tilde = (input @ self.weight_ih.T + self.bias_ih).chunk(2, dim=-1)
        z = torch.sigmoid(z)
        h = (1 - z) * state + z * h_tilde
        return h, h
'''


def test_a_handwritten_torch_cell_verifies_by_its_parameter_names(tmp_path):
    path = tmp_path / "handwritten_mingru.py"
    path.write_text(HANDWRITTEN_MINGRU)
    result = run("verify", "mingru", "--target", "torch", "--module", str(path))
    assert result.exit_code == 0, result.output
    assert "filled by name: weight_ih = [W_z | W_h], bias_ih = [b_z | b_h]" in result.output
    assert "no layer class MinGRU in the module: the cell only" in result.output

    path.write_text(HANDWRITTEN_MINGRU.replace("z, h_tilde = (", "h_tilde, z = ("))
    result = run("verify", "mingru", "--target", "torch", "--module", str(path))
    assert result.exit_code == 1 and "FAIL cell step" in result.output, result.output


def test_torch_target_with_a_keras_backend_is_a_usage_error():
    result = run("verify", "mingru", "--target", "torch", "--backend", "jax")
    assert result.exit_code == 2, result.output
    assert "runs on PyTorch itself" in result.output
