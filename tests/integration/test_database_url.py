"""A first run names its PostgreSQL database the plain way, and the database need not exist yet."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from riposte.config import ProviderConfig, Settings
from riposte.testing.server import RunningServer
from tests.conftest import ADMIN_URL, run_admin_sql
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply
from tests.integration.sdk import sdk


@pytest.mark.postgres
def test_a_plain_postgresql_url_to_a_missing_database_is_created_and_served(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    name = f"riposte_first_run_{secrets.token_hex(4)}"
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    assert url.startswith("postgresql://")
    settings = Settings(data_dir=tmp_path, database_url=url,
                        providers=[ProviderConfig(name="fake", base_url=upstream.base_url)])
    try:
        with RunningServer(settings) as server:
            upstream.enqueue(text_reply("stored"))
            created = sdk(server).responses.create(model="fake/m", input="hi")
            assert sdk(server).responses.retrieve(created.id).output_text == "stored"
    finally:
        run_admin_sql(ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
