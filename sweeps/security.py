"""Secure by default: which Ray connections a sweep refuses to make without `--insecure`.

Ray's job submission and dashboard APIs run arbitrary code for whoever can reach them
(CVE-2023-48022, "ShadowRay", exploited in the wild). In Ray 2.60 token authentication is *off*
unless `RAY_AUTH_MODE=token` (an unset variable means disabled for a cluster joined by address; a
local `ray.init()` may turn it on and write `~/.ray/auth_token`), so the launcher asks Ray for its
effective mode (`sweeps.launch.token_auth_enabled`) instead of reading the variable, and refuses:

- joining a cluster at a non-loopback address (or `auto`, whose address is not known until joined)
  while token auth is disabled;
- binding the dashboard of a local Ray to a non-loopback host (`0.0.0.0` exposes it to the network)
  while token auth is disabled.

`--insecure` (``insecure=True``) lets both through, with one warning line. The decision is a pure
function of strings (`refusal`), so it is tested on addresses without opening any connection.
"""

from __future__ import annotations

import ipaddress

from contracts.errors import UserError


class InsecureConnectionError(UserError):
    """A sweep would join or expose a Ray cluster without authentication."""


def host_of(address: str) -> str:
    """The host part of a Ray address: ``ray://h:10001``, ``h:6379``, ``[::1]:6379``, ``h``."""
    rest = address.strip().split("://", 1)[-1].split("/", 1)[0]
    if rest.startswith("["):                                   # [IPv6]:port
        return rest[1:].split("]", 1)[0]
    if rest.count(":") > 1:                                    # bare IPv6, no port
        return rest
    return rest.rsplit(":", 1)[0] if ":" in rest else rest


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (and IPv4-mapped loopback); False for anything else,
    `auto` and names included (a name may resolve anywhere; it is not looked up)."""
    host = host.strip().lower()
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def refusal(address: str | None, dashboard: bool, dashboard_host: str, *, auth_enabled: bool) -> str | None:
    """Why this connection is refused without `--insecure` (one line), or None when it is safe."""
    if auth_enabled:
        return None
    if address and not is_loopback(host_of(address)):
        return (f"--address {address}: joining a Ray cluster that is not on this machine with token "
                f"authentication disabled lets anyone who reaches it run code (CVE-2023-48022); set "
                f"RAY_AUTH_MODE=token (and RAY_AUTH_TOKEN on every node) or pass --insecure")
    if not address and dashboard and not is_loopback(dashboard_host):
        return (f"--dashboard-host {dashboard_host}: a dashboard reachable from the network with token "
                f"authentication disabled lets anyone who reaches it run code (CVE-2023-48022); bind it to "
                f"127.0.0.1, set RAY_AUTH_MODE=token, or pass --insecure")
    return None


def check_connection(address: str | None, dashboard: bool, dashboard_host: str, *, auth_enabled: bool,
                     insecure: bool = False) -> str | None:
    """Raise `InsecureConnectionError` for a refused connection unless `insecure`; with `insecure`,
    return the warning line to print (None when there is nothing to warn about)."""
    why = refusal(address, dashboard, dashboard_host, auth_enabled=auth_enabled)
    if why is None:
        return None
    if not insecure:
        raise InsecureConnectionError(why)
    return "warning: --insecure: " + why.split(": ", 1)[1].split("; set", 1)[0].split("; bind", 1)[0]
