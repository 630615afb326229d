"""Writing is all or nothing: a failed write leaves the target untouched."""
import os

import pytest

from eqcell.write import write_atomic


def test_writes_new_file(tmp_path):
    path = tmp_path / "a.py"
    write_atomic(path, "x = 1\n")
    assert path.read_text() == "x = 1\n"


def test_keeps_mode_of_existing_file(tmp_path):
    path = tmp_path / "a.py"
    path.write_text("old\n")
    os.chmod(path, 0o640)
    write_atomic(path, "new\n")
    assert path.read_text() == "new\n"
    assert (path.stat().st_mode & 0o777) == 0o640


def test_failed_write_leaves_target_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "a.py"
    path.write_text("old\n")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        write_atomic(path, "new\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.py"]
