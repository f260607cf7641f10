"""Which endpoint URLs the platform may call: http(s) to public addresses only.

An organisation's endpoint URL is chosen by a customer, so without this rule webhooks would be a way to make the
platform post to its own internal network (a database's HTTP port, a cloud metadata service at
169.254.169.254). The URL must be http or https, and every address its host resolves to must be public: not
private, loopback, link-local, multicast, reserved or unspecified. An operator may allow private addresses (a
local demo receiver). The check runs when an endpoint is saved and again before each post, since DNS can change.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from billing_runtime.errors import InvalidArgument

MAX_URL = 2000


@dataclass(frozen=True)
class Target:
    host: str
    port: int


def parse_url(url: str, field: str = "url") -> Target:
    if not url or len(url) > MAX_URL:
        raise InvalidArgument(f"is required (at most {MAX_URL} characters)", field=field)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise InvalidArgument(f"is not a URL: {error}", field=field) from None
    if parts.scheme not in ("http", "https"):
        raise InvalidArgument("must be an http or https URL", field=field)
    if not parts.hostname:
        raise InvalidArgument("has no host", field=field)
    if parts.username or parts.password:
        raise InvalidArgument("may not carry credentials; authenticate with the webhook signature", field=field)
    return Target(parts.hostname, port or (443 if parts.scheme == "https" else 80))


def refused_address(address: str) -> str | None:
    """Why an IP address may not be called, or None when it is public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for test, why in ((ip.is_loopback, "loopback"), (ip.is_link_local, "link-local"),
                      (ip.is_multicast, "multicast"), (ip.is_unspecified, "unspecified"),
                      (ip.is_reserved, "reserved"), (ip.is_private, "private")):
        if test:
            return f"{address} is a {why} address"
    if not ip.is_global:
        return f"{address} is not a public address"
    return None


def check_addresses(host: str, addresses: list[str], allow_private: bool, field: str = "url") -> None:
    """Refuse (naming ``field``) when any address of the host is not public, unless private ones are allowed."""
    if not addresses:
        raise InvalidArgument(f"its host {host!r} does not resolve", field=field)
    if allow_private:
        return
    for address in addresses:
        why = refused_address(address)
        if why:
            raise InvalidArgument(f"its host {host!r} resolves to a non-public address ({why})", field=field)
