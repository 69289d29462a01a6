"""The SSRF guard for webhook URLs: a URL is delivered to only when every address its host
resolves to is a public unicast address, or lies inside the operator's allowed networks
(TASS_WEBHOOK_ALLOW_NETWORKS). Checked at registration and again before every delivery, and
the delivery then connects to an address that was checked (no second lookup to rebind)."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from urllib.parse import urlsplit

from tass.core.errors import DomainError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> the addresses it resolves to (a test passes a stub; nothing else is sent)
Resolver = Callable[[str, int], list[str]]

MAX_URL_LENGTH = 2048
# lookups run on a few threads of their own: a nameserver that never answers holds one of
# these (until the system resolver gives up), never a request's thread or a delivery's
LOOKUP_THREADS = 4
# NAT64 (RFC 6052) carries an IPv4 address in its last 32 bits
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(DomainError, ValueError):
    """The URL is malformed or reaches an address webhooks may not be sent to (a 422 naming
    the webhook's `url`)."""

    status_code = 422
    field = ("body", "url")


class LookupTimedOut(DomainError):
    """The host's name did not resolve in time (a nameserver that does not answer, or every
    lookup thread busy with such names): no verdict on the URL, try again later (503)."""

    status_code = 503
    retry_after = 30

    def detail(self) -> str:
        return f"url: {self}"


@dataclass(frozen=True)
class Target:
    """A checked URL: its host and port, and the addresses it may be delivered to."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: list[str]


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host (IPv4 and IPv6)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(f"host {host!r} does not resolve") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


_lookup_pool: ThreadPoolExecutor | None = None
_lookup_pool_lock = threading.Lock()


def _lookups() -> ThreadPoolExecutor:
    global _lookup_pool
    with _lookup_pool_lock:
        if _lookup_pool is None:
            _lookup_pool = ThreadPoolExecutor(LOOKUP_THREADS, thread_name_prefix="tass-lookup")
        return _lookup_pool


def bounded(
    resolver: Resolver, timeout: float, threads: ThreadPoolExecutor | None = None
) -> Resolver:
    """`resolver` with a wall-clock bound: the lookup runs on `threads` (by default the
    process's LOOKUP_THREADS lookup threads) and the caller waits at most `timeout` seconds
    for it, then gets LookupTimedOut (the lookup finishes, or not, on its own thread)."""

    def resolve(host: str, port: int) -> list[str]:
        future = (threads or _lookups()).submit(resolver, host, port)
        try:
            return future.result(timeout=max(timeout, 0.0))
        except FutureTimeout:
            future.cancel()  # still queued behind stuck lookups: never run it
            raise LookupTimedOut(
                f"host {host!r} did not resolve within {timeout:.3g} s; try again later"
            ) from None

    return resolve


def parse_networks(cidrs: Iterable[str]) -> list[IPNetwork]:
    """The allowed networks; a malformed entry is a configuration error (ValueError)."""
    return [ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs]


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4, Teredo), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def refusal_reason(address: IPAddress) -> str | None:
    """Why webhooks may not reach this address (None for a public unicast address)."""
    inner = embedded_ipv4(address)
    if inner is not None:
        reason = refusal_reason(inner)
        return f"{reason} (inside the IPv6 address {address})" if reason else None
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives here)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_private or not address.is_global:
        return "a private or reserved address"
    return None


def check_address(text: str, allowed: list[IPNetwork]) -> None:
    """Raise AddressRefused unless this address may receive webhooks."""
    address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    if any(address in network for network in allowed):
        return
    inner = embedded_ipv4(address)
    if inner is not None and any(inner in network for network in allowed):
        return
    reason = refusal_reason(address)
    if reason is not None:
        raise AddressRefused(
            f"{address} is {reason}; allow it with TASS_WEBHOOK_ALLOW_NETWORKS if intended"
        )


def split_url(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of an http(s) URL without credentials (AddressRefused if not)."""
    if len(url) > MAX_URL_LENGTH:
        raise AddressRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise AddressRefused("the URL must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise AddressRefused(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise AddressRefused("the URL must start with http:// or https://")
    if not parts.hostname:
        raise AddressRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise AddressRefused("the URL must not carry credentials (user:password@)")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def check_url(url: str, allowed: list[IPNetwork], resolver: Resolver = system_resolver) -> Target:
    """The checked target of a webhook URL. Every address the host resolves to must pass, so
    a name that also resolves into a private network is refused whichever one a client picks.
    Only the resolver is asked (no connection is made)."""
    scheme, host, port = split_url(url)
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = resolver(host, port)
        if not addresses:
            raise AddressRefused(f"host {host!r} does not resolve") from None
        for address in addresses:
            try:
                check_address(address, allowed)
            except AddressRefused as exc:
                raise AddressRefused(f"{host} resolves to {exc}") from None
    else:
        check_address(addresses[0], allowed)
    return Target(url=url, scheme=scheme, host=host, port=port, addresses=addresses)
