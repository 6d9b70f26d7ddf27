"""Where a pull source may send the portal's credentials: Zoho's hosts over https, and
the hosts BILLSYNC_PORTAL_ALLOWED_HOSTS lists (a fake portal) — nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from schemas.api import PullSource
from worker.integrations.credential_box import pull_source, sealed_source
from worker.portal.allowed_hosts import PortalHostRefused, check_source_hosts, check_url
from worker.portal.auth import DATA_CENTRES
from worker.settings import Settings

REFRESH_SET = {"client_id": "1000.ID", "client_secret": "s", "refresh_token": "1000.r"}


def settings(tmp_path: Path, allowed: str = "") -> Settings:
    return Settings(
        data_dir=tmp_path,
        credential_key=Fernet.generate_key().decode(),
        portal_allowed_hosts=allowed,
    )


@pytest.mark.parametrize("dc", sorted(DATA_CENTRES))
def test_every_data_centres_hosts_are_allowed_over_https(tmp_path: Path, dc: str) -> None:
    hosts = DATA_CENTRES[dc]

    check_url(hosts.api_url + "/api/v3", "api", "base_url", settings(tmp_path))
    check_url(hosts.accounts_url, "accounts", "credentials.accounts_url", settings(tmp_path))


@pytest.mark.parametrize(
    "url",
    [
        "http://projectsapi.zoho.com",  # the token would cross the network in clear
        "https://projectsapi.zoho.com:8443",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata
        "http://127.0.0.1:5432",
        "https://projectsapi.zoho.com.evil.example",
        "https://projectsapi.zoho.com@evil.example",  # the host is evil.example
        "https://accounts.zoho.com",  # an accounts host is not an API host
        "file:///etc/passwd",
    ],
)
def test_anything_else_is_refused_by_default_naming_the_setting(tmp_path: Path, url: str) -> None:
    with pytest.raises(PortalHostRefused) as refused:
        check_url(url, "api", "base_url", settings(tmp_path))

    assert refused.value.field == "base_url"
    assert "BILLSYNC_PORTAL_ALLOWED_HOSTS" in str(refused.value)


@pytest.mark.parametrize(
    ("allowed", "url", "ok"),
    [
        ("127.0.0.1:8090", "http://127.0.0.1:8090", True),
        ("127.0.0.1:8090", "http://127.0.0.1:8091", False),
        ("127.0.0.1", "http://127.0.0.1:41234/api", True),  # no port: any port
        ("portal.test", "http://portal.test", True),
        ("portal.test:443", "https://portal.test", True),  # the scheme's default port
        ("*.zoho.example", "https://projects.zoho.example", True),
        ("*.zoho.example", "https://zoho.example.evil.test", False),
        ("[::1]:8090", "http://[::1]:8090", True),
        ("[::1]", "http://[::1]:9", True),
        ("localhost, 127.0.0.1:8090", "http://127.0.0.1:8090", True),
        ("127.0.0.1:8090", "http://localhost:8090", False),
    ],
)
def test_the_setting_adds_hosts(tmp_path: Path, allowed: str, url: str, ok: bool) -> None:
    check = settings(tmp_path, allowed)
    if ok:
        check_url(url, "api", "base_url", check)
    else:
        with pytest.raises(PortalHostRefused):
            check_url(url, "api", "base_url", check)


def test_the_accounts_url_override_is_held_to_the_accounts_hosts(tmp_path: Path) -> None:
    evil = {"credentials": {**REFRESH_SET, "accounts_url": "https://evil.example"}}
    zoho = {"credentials": {**REFRESH_SET, "accounts_url": "https://accounts.zoho.eu"}}

    with pytest.raises(PortalHostRefused) as refused:
        check_source_hosts(evil, settings(tmp_path))
    check_source_hosts(zoho, settings(tmp_path))

    assert refused.value.field == "credentials.accounts_url"


def test_storing_a_source_for_another_host_is_refused(tmp_path: Path) -> None:
    source = PullSource(base_url="http://10.0.0.5", credentials={"access_token": "t"})

    with pytest.raises(PortalHostRefused):
        sealed_source(source, settings(tmp_path))


def test_a_source_stored_before_the_check_is_refused_when_opened_for_a_pull(
    tmp_path: Path,
) -> None:
    legacy = {"base_url": "http://10.0.0.5/", "dc": "com", "credentials": {"access_token": "t"}}

    with pytest.raises(PortalHostRefused):
        pull_source(legacy, settings(tmp_path))
    assert pull_source(legacy, settings(tmp_path, "10.0.0.5")) is not None
