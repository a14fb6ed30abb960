"""Outbound HTTP to URLs that users give: refuse private, loopback and link-local addresses.

A flow's ``http_request`` step, a webhook subscription or a callback URL names a host; without
this check it could reach the metadata service or the database next door. Allowed only when
``HUB_ALLOW_PRIVATE_URLS`` says so (tests and on-premise set-ups that call internal services).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeURL(ValueError):
    """The URL is malformed, not http(s), or resolves to an address we do not call."""


def _forbidden(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified)


async def check_url(url: str, *, allow_private: bool) -> None:
    """Raise :class:`UnsafeURL` unless ``url`` is http(s) to public addresses (or allowed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL(f"{url!r} is not an http(s) URL")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 443,
                                                             type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnsafeURL(f"cannot resolve {parts.hostname}: {exc.strerror}") from None
    for info in infos:
        if _forbidden(str(info[4][0])):
            raise UnsafeURL(f"{parts.hostname} resolves to {info[4][0]}, a private or local address "
                            "(set HUB_ALLOW_PRIVATE_URLS=true to allow)")
