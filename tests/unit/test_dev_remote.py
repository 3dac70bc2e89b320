"""Where `o2c dev --remote` points each system: the sandbox, unless the user said otherwise.

The whole command, the README pasted against it, is tests/integration/test_dev_remote.py.
"""

from __future__ import annotations

from o2c_service.dev import banner
from o2c_service.dev_remote import point_at_sandbox
from o2c_service.settings import Settings


def test_every_system_without_a_url_is_called_at_its_sandbox_port() -> None:
    settings = point_at_sandbox(Settings(sandbox_port=9101))
    assert settings.remote_systems() == ["crm", "billing", "logistics", "payments"]
    assert settings.billing_url == "http://127.0.0.1:9102"
    assert settings.local_calls() is False, "remote systems' calls are normal activities"


def test_a_url_the_user_gave_wins_and_the_banner_says_its_sandbox_port_idles() -> None:
    mine = "https://billing.example.com"
    settings = point_at_sandbox(Settings(sandbox_port=9101, billing_url=mine))
    assert settings.billing_url == mine
    assert settings.crm_url == "http://127.0.0.1:9101"
    shown = banner(settings, remote=True)
    assert f"billing      http://127.0.0.1:9102   (unused: O2C_BILLING_URL is {mine})" in shown
    assert "crm          http://127.0.0.1:9101\n" in shown
