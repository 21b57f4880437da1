"""Shared fixtures: a fake Kiro and a gateway, each on a real socket on 127.0.0.1."""

from __future__ import annotations

import os

import pytest

from kiro_gateway.fake.server import FakeKiro
from support import REFRESH_TOKEN, start_gateway

# The command line speaks the locale's language (kiro_gateway.cli_errors.localized). Whatever this
# machine's locale is, the tests (and the processes they start) see none, so both languages, unless a
# test names a locale itself.
for _name in ("LC_ALL", "LC_MESSAGES", "LANG"):
    os.environ.pop(_name, None)


@pytest.fixture(scope="session")
def fake():
    f = FakeKiro()
    f.start()
    f.add_account(refresh_token=REFRESH_TOKEN)
    yield f
    f.stop()


@pytest.fixture(scope="session")
def gateway(fake, tmp_path_factory):
    gw = start_gateway(fake, tmp_path_factory.mktemp("gateway"))
    yield gw
    gw.server.stop()


@pytest.fixture
def clean_fake(fake):
    """The shared fake with no leftover scripts, and its request log emptied."""
    fake.clear_scripts()
    fake.clear_requests()
    yield fake
    fake.clear_scripts()


@pytest.fixture
def client(gateway):
    import anthropic

    return anthropic.Anthropic(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0)


@pytest.fixture
def aclient(gateway):
    import anthropic

    return anthropic.AsyncAnthropic(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0)


@pytest.fixture(scope="session")
def http():
    """One HTTP client for many requests (fuzzing): a new httpx client per request costs ~40 ms."""
    import httpx

    with httpx.Client(timeout=10) as c:
        yield c
