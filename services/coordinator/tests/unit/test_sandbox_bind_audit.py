"""sandbox.bind_audit: the bind set is refused when it holds a socket, a directory anyone but
root may write, a writable bind or a host-private root — on temp trees, no bwrap."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from integr8scode_coordinator.sandbox import SandboxUnavailableError
from integr8scode_coordinator.sandbox.bind_audit import audit, compact, forbidden
from integr8scode_coordinator.sandbox.detect import Mount

ME = frozenset({os.geteuid()})  # the temp tree's owner stands in for root here
ANYWHERE = ()  # temp trees live under /tmp, a forbidden root: the walk is tested without that


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "runtime"
    (root / "lib" / "python").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_bytes(b"\x7fELF")
    (root / "bin" / "link").symlink_to("/run/elsewhere.sock")  # resolves inside the sandbox
    for d in (root, root / "lib", root / "lib" / "python", root / "bin"):
        d.chmod(0o755)
    return root


@pytest.fixture
def unix_socket(tree: Path) -> Iterator[Path]:
    path = tree / "lib" / "python" / "agent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    yield path
    server.close()


def binds(*paths: Path | str) -> list[Mount]:
    return [Mount("ro-bind", str(p), str(p)) for p in paths]


def test_a_clean_tree_passes_and_is_counted(tree: Path) -> None:
    report = audit(
        [*binds(tree), Mount("symlink", "usr/bin", "/bin")],
        trusted_uids=ME,
        forbidden_roots=ANYWHERE,
    )
    assert report.roots == (str(tree),)
    assert report.entries == 5  # lib, python, bin, tool, link: nothing more
    assert report.elapsed_ms >= 0


def test_a_socket_anywhere_in_a_bound_tree_refuses_the_start(tree: Path, unix_socket: Path) -> None:
    with pytest.raises(SandboxUnavailableError) as refused:
        audit(binds(tree), trusted_uids=ME, forbidden_roots=ANYWHERE)
    assert f"{unix_socket}: a socket" in str(refused.value)


def test_a_directory_others_may_write_refuses_the_start(tree: Path) -> None:
    (tree / "lib").chmod(0o777)
    with pytest.raises(SandboxUnavailableError, match=r"lib: a directory .* others may write"):
        audit(binds(tree), trusted_uids=ME, forbidden_roots=ANYWHERE)


def test_a_directory_of_an_untrusted_owner_refuses_the_start(tree: Path) -> None:
    with pytest.raises(SandboxUnavailableError, match="where a socket could appear"):
        audit(binds(tree), trusted_uids=frozenset({2**31}), forbidden_roots=ANYWHERE)


def test_a_writable_bind_refuses_the_start(tree: Path) -> None:
    with pytest.raises(SandboxUnavailableError, match=r"a bind mount \(only read-only binds\)"):
        audit([Mount("bind", str(tree), "/x")], trusted_uids=ME, forbidden_roots=ANYWHERE)


@pytest.mark.parametrize("path", ["/", "/run", "/var/lib/x", "/home/u", "/tmp", "/proc", "/etc"])  # noqa: S108
def test_host_private_roots_are_never_bound(path: str) -> None:
    assert forbidden(path)
    with pytest.raises(SandboxUnavailableError, match="under a host-private root"):
        audit(binds(path))


def test_chosen_files_and_runtime_dirs_are_allowed() -> None:
    for path in ("/etc/ld.so.cache", "/usr/bin", "/usr/lib/x86_64-linux-gnu", "/opt/node"):
        assert not forbidden(path), path
    assert forbidden("/etc/passwd")
    assert not forbidden("/variable")  # a prefix of the name is not the directory


def test_a_tree_too_large_to_check_refuses_the_start(tree: Path) -> None:
    with pytest.raises(SandboxUnavailableError, match="more than 3 entries to check; bind less"):
        audit(binds(tree), max_entries=3, trusted_uids=ME, forbidden_roots=ANYWHERE)


def test_a_missing_bind_is_named(tmp_path: Path) -> None:
    with pytest.raises(SandboxUnavailableError, match="No such file"):
        audit(binds(tmp_path / "nope"), trusted_uids=ME, forbidden_roots=ANYWHERE)


def test_compact_keeps_the_outermost_of_nested_paths() -> None:
    assert compact(["/usr/lib/x/", "/usr/lib/x/y", "/usr/bin", "/usr/lib/xy", "/usr/bin"]) == (
        "/usr/bin",
        "/usr/lib/x",
        "/usr/lib/xy",
    )


def test_this_hosts_bind_set_passes() -> None:
    """What ``BubblewrapRunner.detect`` binds here: small, and free of sockets."""
    from integr8scode_coordinator.sandbox.detect import system_mounts  # noqa: PLC0415

    report = audit([*system_mounts(tools=("/bin/sh",)), *binds("/etc/ld.so.cache")])
    assert report.entries < 50_000
