"""Source addresses and CIDR ranges: where a call came from (the peer, or, when the peer is one of the configured
trusted proxies, the address the proxies report in ``X-Forwarded-For``), and whether it is within given ranges.
The REST API and the gRPC API both judge a caller's address with these. Pure: no I/O."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

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


def forwarded_client(peer: str, forwarded_for: Iterable[str], trusted_proxies: Sequence[Network]) -> str:
    """The client's address: ``peer`` itself unless it is a trusted proxy; then the ``X-Forwarded-For`` values
    (each a comma-separated list), read from the right and skipping trusted hops. A client cannot forge it: the
    header of an untrusted peer is ignored."""
    if not trusted_proxies or not within(peer, trusted_proxies):
        return peer
    hops = [hop.strip() for hop in ",".join(forwarded_for).split(",") if hop.strip()]
    for hop in reversed(hops):
        if not within(hop, trusted_proxies):
            return hop if _address(hop) is not None else peer
    return hops[0] if hops else peer
