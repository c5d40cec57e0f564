"""`sweeps.security`: which Ray connections are refused without --insecure, decided on address strings
alone (no connection is opened to any address in these tests), and Ray's effective auth mode."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from contracts.errors import UserError
from sweeps.security import InsecureConnectionError, check_connection, host_of, is_loopback, refusal


@pytest.mark.parametrize("address, host", [
    ("10.1.2.3:6379", "10.1.2.3"), ("ray://head.example.org:10001", "head.example.org"), ("auto", "auto"),
    ("[::1]:6379", "::1"), ("127.0.0.1:6379", "127.0.0.1"), ("fd00::2", "fd00::2"), ("localhost", "localhost"),
])
def test_host_of(address, host):
    assert host_of(address) == host


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("localhost", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("0.0.0.0", False), ("::", False), ("10.0.0.1", False), ("192.0.2.2", False), ("auto", False),
    ("localhost.evil.example", False), ("head-node", False), ("", False),
])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("address", ["10.1.2.3:6379", "ray://head.example.org:10001", "auto", "192.0.2.2:6379",
                                     "[fd00::2]:6379", "0.0.0.0:6379"])
def test_joining_a_remote_cluster_without_auth_is_refused(address):
    why = refusal(address, False, "127.0.0.1", auth_enabled=False)
    assert why is not None and why.startswith(f"--address {address}:") and "CVE-2023-48022" in why
    with pytest.raises(InsecureConnectionError, match="--insecure") as exc:
        check_connection(address, False, "127.0.0.1", auth_enabled=False)
    assert isinstance(exc.value, UserError) and "\n" not in str(exc.value)
    warning = check_connection(address, False, "127.0.0.1", auth_enabled=False, insecure=True)
    assert warning.startswith("warning: --insecure: ") and "\n" not in warning
    assert refusal(address, False, "127.0.0.1", auth_enabled=True) is None        # token auth on: fine


@pytest.mark.parametrize("address", ["127.0.0.1:6379", "localhost:6379", "[::1]:6379", "ray://127.0.0.1:10001"])
def test_loopback_cluster_is_allowed_without_auth(address):
    assert refusal(address, False, "127.0.0.1", auth_enabled=False) is None
    assert check_connection(address, False, "127.0.0.1", auth_enabled=False) is None


@pytest.mark.parametrize("host, refused", [("0.0.0.0", True), ("::", True), ("192.0.2.2", True),
                                           ("127.0.0.1", False), ("localhost", False)])
def test_dashboard_bound_to_the_network_without_auth_is_refused(host, refused):
    why = refusal(None, True, host, auth_enabled=False)
    assert (why is not None) is refused
    if refused:
        assert why.startswith(f"--dashboard-host {host}:")
    assert refusal(None, False, host, auth_enabled=False) is None                 # no dashboard, nothing bound
    assert refusal(None, True, host, auth_enabled=True) is None


@pytest.mark.parametrize("mode, enabled", [(None, False), ("disabled", False), ("token", True)])
def test_effective_auth_mode_is_read_from_ray(mode, enabled):
    """Ray 2.60: an unset RAY_AUTH_MODE means token auth is disabled (a fresh interpreter per mode,
    since Ray reads its config once per process)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    if mode is not None:
        env["RAY_AUTH_MODE"] = mode
    code = "from sweeps.launch import token_auth_enabled; print(token_auth_enabled())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.stdout.strip().splitlines()[-1] == str(enabled), out.stderr[-500:]


def test_launch_refuses_before_anything_starts(tmp_path):
    """The library path: `launch` refuses a remote unauthenticated address before planning or writing."""
    from sweeps.launch import launch
    from sweeps.spec import validate_spec

    spec = validate_spec({"design": "grid", "vocab_size": 512, "context": 64, "sizes": ["20k"],
                          "tokens": ["1M"], "min_steps": 10, "batch": {"tokens": 1024}})
    with pytest.raises(InsecureConnectionError):
        launch(spec, tmp_path / "out", address="10.9.8.7:6379")
    assert not (tmp_path / "out").exists()
