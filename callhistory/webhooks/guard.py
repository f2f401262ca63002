"""Where webhooks may go: https URLs to public addresses, unless the operator allows a host
(``CALLHISTORY_WEBHOOK_ALLOW``: names, addresses or networks, comma-separated), which may
then also be plain http and resolve anywhere.

The address check is made where the connection is opened, on the addresses DNS gave at that
moment, and the connection goes to the address checked: a name that resolves to a public
address when the endpoint is created and to 169.254.169.254 later is refused then.
Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from functools import lru_cache
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from callhistory.kit.config import ConfigError
from callhistory.kit.errors import InvalidArgument

_HOST = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Blocked(Exception):
    """The endpoint's host resolves to an address webhooks may not reach."""


class AllowList:
    def __init__(self, text: str = "") -> None:
        names: set[str] = set()
        networks: list[Network] = []
        for part in (p.strip().lower() for p in text.split(",")):
            if not part:
                continue
            try:
                networks.append(ipaddress.ip_network(part.strip("[]"), strict=False))
            except ValueError:
                if not _HOST.match(part):
                    raise ConfigError(
                        f"CALLHISTORY_WEBHOOK_ALLOW: {part!r} is neither a host name nor an "
                        "address or network"
                    ) from None
                names.add(part)
        self._names = frozenset(names)
        self._networks = tuple(networks)

    def host(self, host: str) -> bool:
        """Whether this host (as written in a URL) is allowed whatever it resolves to."""
        host = host.lower().strip("[]")
        if host in self._names:
            return True
        address = _address(host)
        return address is not None and self.address(address)

    def address(self, address: Address) -> bool:
        return any(address in network for network in self._networks)


@lru_cache(maxsize=8)
def allow_list(text: str) -> AllowList:
    """The operator's allow-list, parsed once per text (``create_app`` and the CLI parse it at
    start-up, so a bad one is refused there, not on a request)."""
    return AllowList(text)


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def public(address: Address) -> bool:
    """Not loopback, private, link-local (cloud metadata), shared, reserved or multicast."""
    return address.is_global and not address.is_multicast


def check_url(url: str, allow: AllowList, *, field: str = "url") -> str:
    """The endpoint URL as stored, or ``invalid_argument`` naming ``field``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise InvalidArgument(field, f"is not a URL ({error})") from None
    host = parts.hostname or ""
    if not url.isascii() or any(ch.isspace() for ch in url):
        raise InvalidArgument(
            field, "must be ASCII without spaces (a Unicode name in its xn-- form)"
        )
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidArgument(field, "must be an absolute https:// URL")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument(field, "must not carry a user name or password")
    if parts.fragment:
        raise InvalidArgument(field, "must not have a #fragment")
    allowed = allow.host(host)
    if parts.scheme == "http" and not allowed:
        raise InvalidArgument(
            field, "must be https (plain http only to hosts in CALLHISTORY_WEBHOOK_ALLOW)"
        )
    address = _address(host)
    if address is not None and not allowed and not public(address):
        raise InvalidArgument(field, f"{address} is not a public address")
    if port == 0:
        raise InvalidArgument(field, "port 0 is not a port")
    return url


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing names that resolve to addresses webhooks may not reach;
    the connector then connects to the addresses checked here."""

    def __init__(self, allow: AllowList) -> None:
        self._allow = allow
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._allow.host(host):
            return results
        for result in results:
            address = _address(result["host"])
            if address is None or not (public(address) or self._allow.address(address)):
                raise Blocked(f"{host} resolves to {result['host']}, which is not a public address")
        return results

    async def close(self) -> None:
        await self._inner.close()


def check_literal(host: str, allow: AllowList) -> None:
    """An address written in the URL is not resolved: checked here before connecting (the
    allow-list may have changed since the endpoint was created)."""
    address = _address(host.strip("[]"))
    if address is not None and not allow.host(host) and not public(address):
        raise Blocked(f"{address} is not a public address")
