"""The address a request came from: the TCP peer, or, when the peer is one of the configured trusted proxies
(``GATEWAY_TRUSTED_PROXIES``, CIDR ranges), the address the proxies report in ``X-Forwarded-For``, read from the
right and skipping trusted hops. A client cannot forge it by sending the header itself: a header from an
untrusted peer is ignored."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from fastapi import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(ranges: Sequence[str]) -> tuple[Network, ...]:
    """CIDR ranges (a bare address is its own /32 or /128); ValueError names the bad one."""
    networks = []
    for text in ranges:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or CIDR range") from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def within(address: str, networks: Sequence[Network]) -> bool:
    parsed = _address(address)
    return parsed is not None and any(parsed in network for network in networks)


def client_address(request: Request, trusted_proxies: Sequence[Network]) -> str:
    peer = request.client.host if request.client else ""
    if not trusted_proxies or not within(peer, trusted_proxies):
        return peer
    hops = [hop.strip() for hop in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if hop.strip()]
    for hop in reversed(hops):
        if not within(hop, trusted_proxies):
            return hop if _address(hop) is not None else peer
    return hops[0] if hops else peer
