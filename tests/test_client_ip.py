"""One rule for the caller's address, for clicks and postbacks: trust only our own proxies."""

import pytest

from config.client_ip import client_ip_get

FORWARDED = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 198.51.100.4, 10.0.0.1"}


@pytest.mark.parametrize(
    ("proxies", "expected"),
    [(0, "10.0.0.2"), (1, "10.0.0.1"), (2, "198.51.100.4"), (4, "10.0.0.2")],
)
def test_the_client_is_the_entry_the_outermost_trusted_proxy_wrote(settings, proxies, expected):
    # given
    settings.TRUSTED_PROXY_COUNT = proxies

    # when
    address = client_ip_get(meta=FORWARDED)

    # then: the caller's own "6.6.6.6" is never believed
    assert address == expected


def test_without_a_forwarded_header_the_socket_address_is_the_client(settings):
    settings.TRUSTED_PROXY_COUNT = 1

    assert client_ip_get(meta={"REMOTE_ADDR": "203.0.113.9"}) == "203.0.113.9"
