"""The inspector's login, project isolation and stored turn traces, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import httpx
import openai

from riposte.store.database import create_engine
from riposte.store.traces import TraceStore
from riposte.testing.server import RunningServer
from tests.auth.conftest import Deployment
from tests.fakes.scripted_upstream import ScriptedUpstream, make_usage, text_reply

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _login(root: str, key: str) -> httpx.Client:
    browser = httpx.Client(base_url=root)
    page = browser.get("/ui/login")
    token = _CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    answer = browser.post("/ui/login", data={"api_key": key, "csrf_token": token, "next": "/ui/responses"})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/responses", answer.text
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert key not in cookie
    return browser


def test_login_isolation_and_traces(
    deployment: Deployment, start_server: Callable[..., RunningServer], upstream: ScriptedUpstream
) -> None:
    alpha, beta = deployment.create_key("alpha"), deployment.create_key("beta")
    server = start_server()
    root = server.base_url.removesuffix("/v1")

    upstream.enqueue(text_reply("The answer is 42.", usage=make_usage(11, 5)))
    sdk = openai.OpenAI(base_url=server.base_url, api_key=alpha, max_retries=0)
    turn = sdk.responses.create(model="fake/m", input="What is the answer?")
    upstream.enqueue(text_reply("Not kept.", usage=make_usage(3, 2)))
    unstored = sdk.responses.create(model="fake/m", input="forget me", store=False)

    # No session: the pages send the browser to the login, keeping where it was going.
    anonymous = httpx.Client(base_url=root)
    redirect = anonymous.get(f"/ui/responses/{turn.id}")
    assert redirect.status_code == 303 and redirect.headers["location"] == f"/ui/login?next=/ui/responses/{turn.id}"
    # A login form posted without its CSRF token, or with another's, is refused.
    assert anonymous.post("/ui/login", data={"api_key": alpha}).status_code == 403
    mismatched = httpx.Client(base_url=root, cookies={"riposte_ui_csrf": "y" * 43})
    refused = mismatched.post("/ui/login", data={"api_key": alpha, "csrf_token": "x" * 43})
    assert refused.status_code == 403 and "riposte_ui_session" not in refused.headers.get("set-cookie", "")
    # A wrong key is a 401 on the form.
    page = anonymous.get("/ui/login")
    token = _CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    assert anonymous.post("/ui/login", data={"api_key": "sk-wrong", "csrf_token": token}).status_code == 401
    # Other sites' forms are stopped before the page runs.
    forged = anonymous.post("/ui/logout", data={"csrf_token": token}, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403

    as_alpha = _login(root, alpha)
    timeline = as_alpha.get(f"/ui/responses/{turn.id}")
    assert timeline.status_code == 200
    assert "What is the answer?" in timeline.text and "The answer is 42." in timeline.text
    assert "Upstream call to m" in timeline.text and "11 prompt, 5 completion" in timeline.text
    assert "&#34;stream&#34;: true" in timeline.text  # the request body as sent upstream
    assert turn.id in as_alpha.get("/ui/responses").text

    # Another project sees none of it, as through the API.
    as_beta = _login(root, beta)
    assert turn.id not in as_beta.get("/ui/responses").text
    assert as_beta.get(f"/ui/responses/{turn.id}").status_code == 404

    # A turn continuing another names the stored history its upstream call resent instead of keeping a
    # copy, and the timeline shows the request whole.
    upstream.enqueue(text_reply("Still 42.", usage=make_usage(20, 3)))
    follow_up = sdk.responses.create(model="fake/m", input="Are you sure?", previous_response_id=turn.id)
    [step] = asyncio.run(_trace(deployment, follow_up.id)) or []
    assert step["request_history"] == {"response": turn.id, "at": 0, "messages": 2}
    assert step["request"]["messages"] == [{"role": "user", "content": "Are you sure?"}]
    whole = as_alpha.get(f"/ui/responses/{follow_up.id}").text
    assert "3 messages" in whole and "What is the answer?" in whole and "The answer is 42." in whole

    # The trace is stored with the response, not for store=false, and goes with a deleted response.
    assert _stored_steps(deployment, turn.id) == ["upstream_call"]
    assert _stored_steps(deployment, unstored.id) is None
    sdk.responses.delete(turn.id)
    assert _stored_steps(deployment, turn.id) is None
    shown = as_alpha.get(f"/ui/responses/{follow_up.id}").text  # its history's response is gone now
    assert f"2 earlier messages of {turn.id}, no longer stored" in shown and "Are you sure?" in shown
    upstream.enqueue(text_reply("Again.", usage=make_usage(3, 2)))
    kept = sdk.responses.create(model="fake/m", input="again")
    assert asyncio.run(_purged(deployment, 3600)) == 0
    assert _stored_steps(deployment, kept.id) == ["upstream_call"]
    assert asyncio.run(_purged(deployment, 0)) >= 1
    assert _stored_steps(deployment, kept.id) is None

    # Logging out ends the session; so does revoking the key.
    token = _CSRF.search(as_alpha.get("/ui/responses").text).group(1)  # type: ignore[union-attr]
    out = as_alpha.post("/ui/logout", data={"csrf_token": token})
    assert out.status_code == 303 and 'riposte_ui_session=""' in out.headers["set-cookie"]
    assert as_alpha.get("/ui/responses").status_code == 303
    code, listing, _ = deployment.keys("list")
    assert code == 0
    beta_id = next(line for line in listing.splitlines() if '"beta"' in line).split('"key_id":"')[1].split('"')[0]
    assert deployment.keys("revoke", beta_id)[0] == 0
    assert as_beta.get("/ui/responses").status_code == 303


async def _trace(deployment: Deployment, response_id: str) -> list[dict[str, Any]] | None:
    engine = create_engine(deployment.database_url)
    try:
        return await TraceStore(engine).get(response_id)
    finally:
        await engine.dispose()


def _stored_steps(deployment: Deployment, response_id: str) -> list[str] | None:
    steps = asyncio.run(_trace(deployment, response_id))
    return None if steps is None else [step["kind"] for step in steps]


async def _purged(deployment: Deployment, seconds: float) -> int:
    engine = create_engine(deployment.database_url)
    try:
        return await TraceStore(engine).purge_older_than(seconds)
    finally:
        await engine.dispose()
