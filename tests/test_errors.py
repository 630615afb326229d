"""Every documented spec error: a bad spec in errors/<case>.yaml, its exact message in <case>.txt.

Each case runs `eqcell generate` through click's test runner from the repository root (so the
message names `tests/errors/<case>.yaml`) and must exit 2, print exactly the expected message on
stderr, and write nothing, not even over an existing file with --force. One cheaper check per case
then runs `eqcell check`, `eqcell show` and the console entry point `main` once each: the same
message, exit 2, never 1 (an internal error). Errors that need a file too odd or too big to commit
are built here."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from eqcell.cli import cli, main
from eqcell.spec import MAX_BYTES, shipped_names

ROOT = Path(__file__).resolve().parent.parent
ERRORS = Path(__file__).resolve().parent / "errors"
CASES = sorted(p.stem for p in ERRORS.glob("*.yaml"))
# The file as a whole is wrong: there is no line to show.
NO_SOURCE_LINE = {"file_empty", "file_only_comments"}
# The message already says what to write, or there is nothing better to say.
NO_HINT = {"type_name_list", "v2_transpose", "v2_transpose_latex", "v2_diag",
           "v2_identity", "v2_key_heads", "v2_key_vectors", "v2_norm"}
HEAD = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+):(?P<col>\d+): \S")
VALID = "name: TestCell\nequations: |\n  h_t = tanh(W x_t + U h_{t-1})\n"


def _runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # click < 8.2 mixes stderr into output by default
    except TypeError:
        return CliRunner()  # click >= 8.2 always keeps stderr apart


def invoke(*args: str):
    return _runner().invoke(cli, list(args))


def assert_spec_error(result, expected: str):
    """Exit 2, exactly `expected` on stderr, nothing on stdout, no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.stderr
    assert result.stderr == expected
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_every_case_has_its_message():
    """A bad spec without an expected message, or a message without its spec, is a mistake."""
    messages = {p.stem for p in ERRORS.glob("*.txt")}
    assert not set(CASES) - messages, f"cases without a .txt: {sorted(set(CASES) - messages)}"
    assert not messages - set(CASES), f".txt without a case: {sorted(messages - set(CASES))}"
    assert CASES


@pytest.mark.parametrize("case", CASES)
def test_generate_refuses(case, tmp_path, at_root):
    """`generate`: the exact message, exit 2, no file written, an existing one left alone."""
    spec = f"tests/errors/{case}.yaml"
    expected = (ERRORS / f"{case}.txt").read_text(encoding="utf-8")
    out = tmp_path / "out.py"

    assert_spec_error(invoke("generate", spec, "-o", str(out)), expected)
    assert not out.exists()

    out.write_bytes(b"# an older module\n")  # even with --force, an existing file is left alone
    assert_spec_error(invoke("generate", spec, "-o", str(out), "--force"), expected)
    assert out.read_bytes() == b"# an older module\n"
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind


@pytest.mark.parametrize("case", CASES)
def test_message_shape(case):
    """file:line:col: message, then the source line and a caret under the column, then a hint."""
    lines = (ERRORS / f"{case}.txt").read_text(encoding="utf-8").rstrip("\n").split("\n")
    head = HEAD.match(lines[0])
    assert head and head["file"] == f"tests/errors/{case}.yaml", lines[0]
    col = int(head["col"])
    if case in NO_SOURCE_LINE:
        assert not lines[1].startswith("    ")
    else:
        source, caret = lines[1], lines[2]
        assert source.startswith("    ") and source[4:].strip()
        assert re.fullmatch(r" {4}( *)\^+", caret), caret
        if not source.startswith("    ..."):  # a long line is shown as a window around the column
            assert len(source[4:4 + col - 1]) == caret.index("^") - 4 == col - 1
        assert caret.index("^") <= len(source)  # just past the end: a value is missing there
    hints = [line for line in lines if line.startswith("  hint: ")]
    assert len(hints) == (0 if case in NO_HINT else 1)
    if hints:
        assert lines[-1] == hints[0]


@pytest.mark.parametrize("case", CASES)
def test_every_entry_point_same_message(case, at_root, capsys):
    """`check`, `show` and the installed `eqcell` command (`main`, not only the click group) report
    the error the same way: exit 2, never a traceback or an internal error (exit 1)."""
    spec = f"tests/errors/{case}.yaml"
    expected = (ERRORS / f"{case}.txt").read_text(encoding="utf-8")
    for command in ("check", "show"):
        assert_spec_error(invoke(command, spec), expected)
    with pytest.raises(SystemExit) as exited:
        main(["check", spec])
    assert exited.value.code == 2
    assert capsys.readouterr().err == expected


def test_file_over_1_mib(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = VALID.encode() + b"# " + b"a" * MAX_BYTES + b"\n"
    Path("big.yaml").write_bytes(data)
    result = invoke("generate", "big.yaml", "-o", "out.py")
    assert_spec_error(result, f"big.yaml:1:1: spec is {len(data)} bytes, over the 1 MiB limit\n"
                              "  hint: a spec holds a few equations; is this the right file?\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.yaml"]


def test_file_of_exactly_1_mib_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = VALID.encode() + b"# "
    Path("max.yaml").write_bytes(data + b"a" * (MAX_BYTES - len(data) - 1) + b"\n")
    assert invoke("check", "max.yaml").exit_code == 0


def test_missing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("generate", "nope.yaml", "-o", "out.py")
    assert_spec_error(result, "nope.yaml:1:1: no such spec file or shipped spec: 'nope.yaml'\n"
                              f"  hint: shipped specs: {', '.join(shipped_names())}\n")
    assert list(tmp_path.iterdir()) == []


def test_bom_and_crlf_are_accepted(tmp_path, monkeypatch):
    """A UTF-8 byte-order mark and CRLF line ends give the same module as plain LF."""
    for folder, data in (("lf", VALID.encode()),
                         ("bom_crlf", b"\xef\xbb\xbf" + VALID.replace("\n", "\r\n").encode())):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        Path("cell.yaml").write_bytes(data)
        result = invoke("generate", "cell.yaml", "-o", "cell.py")
        assert result.exit_code == 0, result.stderr
    assert (tmp_path / "lf" / "cell.py").read_bytes() == (tmp_path / "bom_crlf" / "cell.py").read_bytes()


def test_bom_and_crlf_keep_positions(tmp_path, monkeypatch):
    """Neither the byte-order mark nor a CR shifts the column or shows in the quoted line."""
    monkeypatch.chdir(tmp_path)
    text = "name: TestCell\nequations: |\n  h_t = tanh(W x_t + U h_{t-1}\n"
    Path("cell.yaml").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    assert_spec_error(invoke("generate", "cell.yaml", "-o", "out.py"),
                      "cell.yaml:3:13: unclosed bracket\n"
                      "      h_t = tanh(W x_t + U h_{t-1}\n"
                      "                ^\n"
                      "  hint: close it with ')'\n")
    Path("first.yaml").write_bytes(b"\xef\xbb\xbfname: \xff\n")
    assert_spec_error(invoke("generate", "first.yaml", "-o", "out.py"),
                      "first.yaml:1:7: spec is not UTF-8 (byte 0xff)\n"
                      "    name: \ufffd\n"
                      "          ^\n"
                      "  hint: save the file as UTF-8\n")
    assert not Path("out.py").exists()


def test_highway_term_is_not_a_spec_error(tmp_path, monkeypatch):
    """x_t combined element-wise with units-sized values (SRU): the cell needs input_dim == units,
    which `build` checks; the spec itself is fine."""
    monkeypatch.chdir(tmp_path)
    Path("sru.yaml").write_text(
        "name: SRUCell\n"
        "equations: |\n"
        "  f_t = sigmoid(W_f x_t + v_f * c_{t-1} + b_f)\n"
        "  r_t = sigmoid(W_r x_t + v_r * c_{t-1} + b_r)\n"
        "  c_t = f_t * c_{t-1} + (1 - f_t) * (W x_t)\n"
        "  h_t = r_t * tanh(c_t) + (1 - r_t) * x_t\n", encoding="utf-8")
    result = invoke("check", "sru.yaml")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("sru.yaml: ok: SRUCell")


def test_every_format_2_construct_not_supported_yet_has_a_case():
    """errors.NOT_YET is the one table of format-2 constructs this version refuses; each entry has
    a case here, so that the change implementing one turns that case into a passing spec."""
    from eqcell.errors import NOT_YET

    messages = "".join(p.read_text(encoding="utf-8") for p in ERRORS.glob("*.txt"))
    missing = [key for key, (what, _, _) in NOT_YET.items() if f": {what} " not in messages]
    assert not missing, f"NOT_YET entries without a case in tests/errors: {missing}"


def test_a_long_line_is_shown_around_the_column(tmp_path, monkeypatch):
    """A 1 MiB line is not printed whole: a window around the caret, and a name 1 MiB long is
    shortened in the message."""
    monkeypatch.chdir(tmp_path)
    Path("long.yaml").write_text("name: TestCell\nequations: |\n  h_t = " + "(" * 500_000 + "\n", encoding="utf-8")
    result = invoke("generate", "long.yaml", "-o", "out.py")
    assert result.exit_code == 2 and len(result.stderr) < 1000, result.stderr[:2000]
    head, source, caret, hint = result.stderr.splitlines()
    assert head == "long.yaml:3:73: this expression nests more than 64 levels deep"
    assert source.endswith("...") and caret.index("^") == 4 + 72
    Path("name.yaml").write_text("name: " + "a-" * 200_000 + "\nequations: |\n  h_t = x_t\n", encoding="utf-8")
    result = invoke("check", "name.yaml")
    assert result.exit_code == 2 and len(result.stderr) < 2000 and "is not a valid Python identifier" in result.stderr
