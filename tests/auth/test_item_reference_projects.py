"""`item_reference` resolves only items of the caller's project: another project's response output
or conversation item is answered exactly as an id that never existed."""

from __future__ import annotations

from collections.abc import Callable

from riposte.testing.server import RunningServer
from tests.auth.conftest import Deployment
from tests.auth.test_cross_project import Caller, ghost
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply


def test_another_projects_items_do_not_resolve(
    deployment: Deployment, start_server: Callable[..., RunningServer], upstream: ScriptedUpstream
) -> None:
    keys = [deployment.create_key(name) for name in ("alpha", "beta")]
    server = start_server()
    alpha, beta = (Caller(server, key) for key in keys)
    upstream.enqueue(text_reply("alpha's answer"), text_reply("seen by alpha"))
    output_id = alpha.ok("POST", "/responses", {"model": "fake/m", "input": "hi"})["output"][0]["id"]
    conversation = alpha.ok("POST", "/conversations", {"items": [{"role": "user", "content": "alpha note"}]})["id"]
    item_id = alpha.ok("GET", f"/conversations/{conversation}/items")["data"][0]["id"]
    sent = len(upstream.requests)

    for stored_id in (output_id, item_id):
        body = {"model": "fake/m", "input": [{"type": "item_reference", "id": stored_id}]}
        refused = beta.call("POST", "/responses", body)
        never_existed = [{"type": "item_reference", "id": ghost(stored_id)}]
        missing = beta.call("POST", "/responses", {**body, "input": never_existed})
        assert refused.status_code == missing.status_code == 400
        assert refused.json()["error"]["param"] == "input[0].id"
        assert refused.text.replace(stored_id, "<id>") == missing.text.replace(ghost_of(missing), "<id>")
    assert len(upstream.requests) == sent

    alpha.ok("POST", "/responses", {"model": "fake/m", "input": [{"type": "item_reference", "id": output_id},
                                                                   {"type": "item_reference", "id": item_id}]})
    assert [m["role"] for m in upstream.requests[-1]["messages"]] == ["assistant", "user"]


def ghost_of(reply: object) -> str:
    message: str = reply.json()["error"]["message"]  # type: ignore[attr-defined]
    return message.split("'")[1]
