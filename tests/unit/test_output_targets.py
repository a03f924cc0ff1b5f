"""Where `-o` and `evi db backup` may write: never over the hub's own database, keys or
witness copies, never onto a device or pipe, never into a directory another user may
write that is not sticky (they could swap the private file while it is written and read
it); a directory that cannot be written is the operator's error, not an internal one."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hub.files import check_target


@pytest.fixture
def home(cli, evi_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EVI_LEDGER__WITNESS_DIR", "witness")
    assert cli("db", "upgrade").code == 0
    return evi_home


@pytest.mark.parametrize(
    ("relative", "what"),
    [
        ("evi.db", "the hub's database"),
        ("evi.db-wal", "the hub's database"),
        ("keys/pseudonym.key", "in the hub's key directory"),
        ("witness/000000000001-0123456789abcdef.checkpoint", "in the ledger's witness directory"),
    ],
)
def test_an_export_never_replaces_the_hubs_own_files(
    cli, home: Path, relative: str, what: str
) -> None:
    (home / "witness").mkdir(exist_ok=True)
    target = home / relative
    before = target.read_bytes() if target.exists() else None
    result = cli("log", "export", "--format", "jsonl", "-o", str(target))
    assert result.code == 2 and f"{target} is {what}; give another file" in result.err
    assert (target.read_bytes() if target.exists() else None) == before
    assert cli("db", "status").code == 0  # the database is whole


def test_a_pipe_or_device_is_not_replaced_by_a_file(cli, home: Path, tmp_path: Path) -> None:
    # a named pipe stands for any special file: `-o /dev/null` must not turn the machine's
    # /dev/null into a file (a test on /dev/null itself would do just that if this broke)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    result = cli("log", "export", "--format", "jsonl", "-o", str(pipe))
    assert result.code == 2 and "is not a regular file" in result.err
    assert stat.S_ISFIFO(pipe.lstat().st_mode)


def test_a_directory_others_may_write_is_refused_unless_sticky(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(Exception, match=r"may be written by other users and is not sticky"):
        check_target(shared / "export.jsonl")
    shared.chmod(0o1777)  # sticky, as /tmp: others cannot rename or remove our files
    assert check_target(shared / "export.jsonl") == shared / "export.jsonl"
    shared.chmod(0o775)  # group-writable: a member of the group could swap it
    with pytest.raises(Exception, match=r"mode 0775"):
        check_target(shared / "export.jsonl")


def test_a_directory_that_cannot_be_written_is_the_operators_error(cli, home: Path) -> None:
    # /proc takes no new files, not even root's (a read-only mount behaves the same)
    result = cli("log", "export", "--format", "jsonl", "-o", "/proc/evi-export.jsonl")
    assert result.code == 2, result.err
    assert "error: /proc: cannot write there" in result.err
