"""The address a request came from: the TCP peer, or, when the peer is one of the configured trusted proxies
(``GATEWAY_TRUSTED_PROXIES``, CIDR ranges), the address the proxies report in ``X-Forwarded-For``
(``domain/networks.py``)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request

from services.gateway.domain.networks import Network, forwarded_client


def client_address(request: Request, trusted_proxies: Sequence[Network]) -> str:
    peer = request.client.host if request.client else ""
    return forwarded_client(peer, request.headers.getlist("x-forwarded-for"), trusted_proxies)
