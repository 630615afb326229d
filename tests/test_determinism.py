"""Same spec, same bytes: generation does not depend on the process (hash seed, import order, ...)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import eqcell
from helpers import REFERENCED_SPECS as CLASSIC_SPECS

SPECS = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "specs").glob("*.yaml"))
TARGETS = ["keras", "tf-keras"]
CASES = [(spec, target) for spec in SPECS for target in TARGETS]
# One process per case, side by side: 22 more for the classic cells (tests/test_zoo_classic.py) took
# the fixture from 4 s to 30 s on two cores, so their CLI runs are left to `pytest -m slow`, one
# process at a time (about 11 s); the two API processes cover them by default.
CLI_CASES = [case for case in CASES if case[0] not in CLASSIC_SPECS]
SLOW_CLI_CASES = [case for case in CASES if case[0] in CLASSIC_SPECS]

_GENERATE_ALL = """
import json, sys
import eqcell
specs, targets = json.loads(sys.argv[1]), json.loads(sys.argv[2])
json.dump({f"{s}|{t}": eqcell.generate(s, target=t) for s in specs for t in targets}, sys.stdout)
"""


def _env(hash_seed):
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = str(hash_seed)
    return env


def _api_in_subprocess(hash_seed):
    done = subprocess.run(
        [sys.executable, "-c", _GENERATE_ALL, json.dumps(SPECS), json.dumps(TARGETS)],
        capture_output=True, text=True, encoding="utf-8", env=_env(hash_seed), timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def api_runs():
    """Every shipped spec x target, generated in two processes with different hash seeds."""
    return _api_in_subprocess(1), _api_in_subprocess(2718281)


@pytest.fixture(scope="module")
def cli_runs():
    """`python -m eqcell generate SPEC --target T -o -`, one process each, run side by side."""
    procs = {
        (spec, target): subprocess.Popen(
            [sys.executable, "-m", "eqcell", "generate", spec, "--target", target, "-o", "-"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(31337),
        )
        for spec, target in CLI_CASES
    }
    results = {}
    for key, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (key, err.decode("utf-8", "replace"))
        results[key] = out
    return results


def test_there_are_shipped_specs():
    assert {"slstm", "lstm", "gru", "simple_rnn"} <= set(SPECS)


@pytest.mark.parametrize(("spec", "target"), CASES)
def test_two_processes_generate_the_same_bytes(api_runs, spec, target):
    first, second = (run[f"{spec}|{target}"] for run in api_runs)
    assert first.encode("utf-8") == second.encode("utf-8")
    # and the same as this process
    assert eqcell.generate(spec, target=target) == first


@pytest.mark.parametrize(("spec", "target"), CLI_CASES)
def test_cli_stdout_is_the_api_text(api_runs, cli_runs, spec, target):
    expected = api_runs[0][f"{spec}|{target}"].encode("utf-8")
    assert cli_runs[(spec, target)] == expected


@pytest.mark.slow
@pytest.mark.parametrize(("spec", "target"), SLOW_CLI_CASES)
def test_classic_cli_stdout_is_the_api_text(api_runs, spec, target):
    expected = api_runs[0][f"{spec}|{target}"].encode("utf-8")
    done = subprocess.run([sys.executable, "-m", "eqcell", "generate", spec, "--target", target, "-o", "-"],
                          capture_output=True, env=_env(31337), timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    assert done.stdout == expected


@pytest.mark.parametrize("spec", SPECS)
def test_generation_is_repeatable_in_process(spec):
    for target in TARGETS:
        assert eqcell.generate(spec, target=target) == eqcell.generate(spec, target=target)
