"""Fixtures for the fake Kiro's own tests: one server for the session, reset before each test.

This `fake` overrides the suite-wide one for tests/fake: these tests need it empty (open mode, no
scripts, default settings) at the start of every test.
"""

from __future__ import annotations

import aiohttp
import pytest

from kiro_gateway.fake import FakeKiro

DEFAULT_SETTINGS = dict(
    default_chunks=None, chunk_delay=0.0, first_byte_delay=0.0, reply_chars=0, record=True, record_bodies=True
)


@pytest.fixture(scope="session")
def fake_server():
    with FakeKiro() as server:
        yield server


@pytest.fixture
def fake(fake_server):
    fake_server.reset()
    fake_server.update_settings(**DEFAULT_SETTINGS)
    yield fake_server


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session
