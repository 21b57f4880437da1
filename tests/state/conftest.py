from __future__ import annotations

import pytest

from redis_server import start_redis


@pytest.fixture(scope="module")
def redis_url():
    server = start_redis()
    yield server.url
    server.stop()
