"""`esrgan._fs`: the one atomic-write helper (no partial file, no silent replace, usual permissions)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from esrgan import _fs

SRC = Path(__file__).resolve().parents[1] / "src" / "esrgan"


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.bin"
    with pytest.raises(RuntimeError), _fs.atomic_writer(target, overwrite=False) as f:
        f.write(b"half of it")
        raise RuntimeError("killed mid-write")
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_a_written_file_is_complete_with_the_usual_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    assert _fs.atomic_write_bytes(target, b"\x00\x01" * 1000, overwrite=False) == target
    assert target.read_bytes() == b"\x00\x01" * 1000
    assert target.stat().st_mode & 0o777 == _fs.default_file_mode()
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind
    _fs.atomic_write_text(target, "new ✓\n", overwrite=True)
    assert target.read_text("utf-8") == "new ✓\n"


def test_an_existing_file_is_never_replaced_without_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"user data")
    with pytest.raises(FileExistsError):
        _fs.atomic_write_bytes(target, b"x", overwrite=False)
    # a file that appears while the temporary file is written is not replaced either
    late = tmp_path / "late.bin"
    with pytest.raises(FileExistsError), _fs.atomic_writer(late, overwrite=False) as f:
        f.write(b"ours")
        late.write_bytes(b"theirs")
    assert target.read_bytes() == b"user data" and late.read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.bin", "out.bin"]


def test_temporary_names_are_recognised(tmp_path: Path) -> None:
    tmp = _fs.temporary_path(tmp_path / "a.b.png")
    assert tmp.parent == tmp_path and _fs.temporary_file_target(tmp.name) == "a.b.png"
    assert _fs.temporary_file_target("a.b.png") is None
    assert _fs.temporary_file_target(".a.png.xyz.tmp") is None


def test_no_other_module_moves_files_into_place() -> None:
    """Files are put in place only by esrgan._fs. Exceptions: whole folders made under a temporary name (a
    MOS study) and a run's files moved aside (--no-resume)."""
    pattern = re.compile(r"\bos\.(replace|rename|link)\(|\bmkstemp\(|\.write_(text|bytes)\(")
    allowed = {
        ("train/loop.py", "os.replace(run_dir / name, aside / name)"),
        ("mos/study.py", "(tmp / MANIFEST).write_text("),
    }
    found = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel == "_fs.py":
            continue
        for line in path.read_text().splitlines():
            if pattern.search(line) and not any(rel == a and s in line for a, s in allowed):
                found.append(f"{rel}: {line.strip()}")
    assert found == []


def test_umask_is_respected(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        _fs.atomic_write_bytes(tmp_path / "f", b"x", overwrite=False)
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o640
