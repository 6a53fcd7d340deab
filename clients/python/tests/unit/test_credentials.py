"""The token file: in the user's config dir, one token per URL, readable by its owner only."""

from __future__ import annotations

import stat
from pathlib import Path

from integr8scode_client.cli.credentials import Credential, CredentialStore, config_dir


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_config_dir_follows_xdg_then_home() -> None:
    assert config_dir({"XDG_CONFIG_HOME": "/x/cfg", "HOME": "/h"}) == Path("/x/cfg/integr8scode")
    assert config_dir({"HOME": "/h"}) == Path("/h/.config/integr8scode")


def test_the_token_file_is_0600_in_a_0700_directory(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "cfg" / "integr8scode")
    store.put(Credential("http://a", "alice", "tok-a"))
    assert _mode(store.path) == 0o600
    assert _mode(store.directory) == 0o700
    assert store.get("http://a") == Credential("http://a", "alice", "tok-a")


def test_a_wider_existing_file_is_narrowed_on_the_next_write(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    store.path.write_text("{}")
    store.path.chmod(0o644)
    store.put(Credential("http://a", "alice", "tok-a"))
    assert _mode(store.path) == 0o600
    assert not list(tmp_path.glob("*.tmp"))


def test_one_token_per_url_and_logout_removes_only_its_own(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    store.put(Credential("http://a", "alice", "tok-a"))
    store.put(Credential("http://b", "bob", "tok-b"))
    assert store.remove("http://a") is True
    assert store.remove("http://a") is False
    assert store.get("http://a") is None
    assert store.get("http://b") == Credential("http://b", "bob", "tok-b")


def test_a_damaged_file_reads_as_logged_out(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    store.path.write_text("not json{")
    assert store.get("http://a") is None
    store.put(Credential("http://a", "alice", "tok-a"))
    assert store.get("http://a") is not None
