"""The webhook SSRF guard, with a stubbed resolver: no test here sends a packet anywhere."""

from __future__ import annotations

import pytest

from tass.core.netguard import AddressRefused, check_url, parse_networks


def stub_resolver(table: dict[str, list[str]]):
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return table.get(host, [])

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


NO_DNS = stub_resolver({})


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://172.31.255.254/hook",
        "http://192.168.1.10:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1/hook",
        "http://127.0.0.2/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
        "http://[::1]/hook",
        "http://[::]/hook",
        "http://[fc00::1]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://[64:ff9b::a00:1]/hook",
        "http://[2002:c0a8:0101::1]/hook",
    ],
)
def test_private_loopback_link_local_and_metadata_addresses_are_refused(url: str) -> None:
    with pytest.raises(AddressRefused, match="TASS_WEBHOOK_ALLOW_NETWORKS"):
        check_url(url, [], NO_DNS)


@pytest.mark.parametrize(
    "url", ["https://93.184.215.14/hook", "https://[2606:4700:4700::1111]/hook"]
)
def test_public_addresses_pass_without_a_lookup(url: str) -> None:
    target = check_url(url, [], NO_DNS)
    assert target.addresses and NO_DNS.asked == []  # type: ignore[attr-defined]


def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    resolver = stub_resolver({"hooks.example.com": ["10.0.0.7"]})
    with pytest.raises(AddressRefused, match=r"hooks\.example\.com resolves to 10\.0\.0\.7"):
        check_url("https://hooks.example.com/in", [], resolver)
    assert resolver.asked == [("hooks.example.com", 443)]  # type: ignore[attr-defined]


def test_one_private_address_among_public_ones_refuses_the_name() -> None:
    resolver = stub_resolver({"mixed.example.com": ["93.184.215.14", "fd12::1"]})
    with pytest.raises(AddressRefused, match="fd12::1"):
        check_url("http://mixed.example.com:8080/", [], resolver)


def test_a_public_name_is_delivered_to_the_checked_addresses() -> None:
    resolver = stub_resolver({"hooks.example.com": ["93.184.215.14", "2606:2800:21f::1"]})
    target = check_url("https://hooks.example.com:8443/in", [], resolver)
    assert (target.host, target.port) == ("hooks.example.com", 8443)
    assert target.addresses == ["93.184.215.14", "2606:2800:21f::1"]


def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(AddressRefused, match="does not resolve"):
        check_url("https://nowhere.example.com/", [], NO_DNS)


def test_allowed_networks_admit_exactly_their_addresses() -> None:
    allowed = parse_networks(["127.0.0.1/32", "10.20.0.0/16"])
    assert check_url("http://127.0.0.1:9000/h", allowed, NO_DNS).addresses == ["127.0.0.1"]
    assert check_url("http://[::ffff:127.0.0.1]/h", allowed, NO_DNS).addresses
    check_url("http://10.20.3.4/h", allowed, NO_DNS)
    for outside in ("http://127.0.0.2:9000/h", "http://10.21.0.1/h", "http://[::1]/h"):
        with pytest.raises(AddressRefused):
            check_url(outside, allowed, NO_DNS)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://93.184.215.14/", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("https:///nohost", "no host"),
        ("https://user:pw@93.184.215.14/", "credentials"),
        ("https://93.184.215.14:99999/", "not a valid URL"),
        ("https://93.184.215.14/" + "a" * 2100, "longer than"),
        ("https://93.184.215.14/\x00", "control characters"),
        ("https://93.184.215.14/a b", "spaces"),
    ],
)
def test_malformed_urls_are_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(AddressRefused, match=message):
        check_url(url, [], NO_DNS)
