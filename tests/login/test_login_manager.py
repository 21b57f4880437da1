"""LoginManager in-process against the fake Kiro over a socket: what the HTTP tests cannot time."""

from __future__ import annotations

import asyncio
import time

import pytest

from kiro_gateway.config import Settings
from kiro_gateway.fake import login as fake_login
from kiro_gateway.kiro.client import KiroHttp
from kiro_gateway.login import LoginManager
from kiro_gateway.pool.pool import CredentialPool


@pytest.fixture
async def manager(fake, tmp_path):
    settings = Settings(oidc_base_url=fake.base_url, auth_base_url=fake.base_url)
    http = KiroHttp()
    mgr = LoginManager(settings, CredentialPool(settings, tmp_path / "credentials.json", http), http,
                       slow_down_step=0.6)
    yield mgr
    await mgr.stop()
    await http.close()


async def test_slow_down_makes_the_poller_wait_longer(manager, fake, monkeypatch):
    monkeypatch.setattr(fake_login, "SLOW_DOWN_STEP", 0)  # the fake does not grow its own interval here
    att = await manager.start("builder-id")
    dev = next(d for d in fake.state.login.devices.values() if d["user_code"] == att.user_code)
    fake._call(dev.update, interval=1.5, last_poll=time.time())  # stricter than it said: the first poll is early
    fake.approve_login(att.user_code)
    await manager.wait(att.id, timeout=10)
    assert att.status == "done", att.error
    assert dev["polls"] == 2  # one slow_down, then the tokens


async def test_cancel_stops_the_poller(manager, fake):
    att = await manager.start("builder-id")
    await manager.cancel(att.id)
    assert att.status == "cancelled"
    await asyncio.sleep(0)
    assert att.task.done()
    fake.approve_login(att.user_code)
    await asyncio.sleep(1.5)
    assert att.status == "cancelled" and not manager.pool.credentials  # nothing added after cancel


async def test_a_cancelled_social_login_closes_its_listener(manager, fake):
    from support import free_port

    port = free_port()
    att = await manager.start("social", provider="google", callback_port=port)
    assert att.callback_listening and port in manager._listeners
    await manager.cancel(att.id)
    for _ in range(50):
        if port not in manager._listeners:
            break
        await asyncio.sleep(0.05)
    assert port not in manager._listeners
