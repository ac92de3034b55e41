"""Where a webhook may go: no server-side request forgery.

A URL is checked when it is saved and again before every delivery run, since DNS can
change in between; the delivery then connects to the very address that was checked,
not to whatever the name resolves to a moment later.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

# Cloud metadata services; most are link-local anyway, listed so the reason is plain.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)


class UnsafeUrl(ValueError):
    """The URL may not receive webhooks; the message says why. `code` is `does_not_exist`
    when the host has no address (the API answers 404 then: well-formed, names nothing)."""

    def __init__(self, message: str, *, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    # The request target: path and query string.
    path: str
    # The checked address to connect to.
    address: str

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def _refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "not a unicast internet address"
    if not address.is_global:
        return "not a public address"
    return None


def webhook_target_resolve(*, url: str) -> Target:
    """The URL's parts and the one address to connect to, or `UnsafeUrl` saying why not."""
    if any(ord(character) <= 0x20 or ord(character) == 0x7F for character in url):
        raise UnsafeUrl("not a valid URL: spaces and control characters must be percent-encoded")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeUrl(f"not a valid URL: {error}") from error
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeUrl("only http and https URLs are allowed")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeUrl("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("credentials in the URL are not allowed")
    port = port or (443 if scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as error:
        raise UnsafeUrl("the host does not resolve", code="does_not_exist") from error
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise UnsafeUrl("the host does not resolve", code="does_not_exist")
    if not settings.WEBHOOK_ALLOW_PRIVATE_HOSTS:
        # Every answer is checked, not just the first: a name that resolves to one public and
        # one private address could otherwise be steered to the private one.
        for address in addresses:
            reason = _refusal(ipaddress.ip_address(address.split("%")[0]))
            if reason:
                raise UnsafeUrl(
                    f"the host {host} resolves to {reason}; webhooks only go to public hosts"
                )
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme=scheme, host=host, port=port, path=path, address=addresses[0])
