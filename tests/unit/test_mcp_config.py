"""Parsing an mcp tool: fields, filters and which calls ask for approval."""

from __future__ import annotations

import pytest

from riposte.errors import InvalidRequestError
from riposte.tools.mcp_config import parse_mcp_tool

BASE = {"type": "mcp", "server_label": "s", "server_url": "https://mcp.example.test/mcp"}


def test_authorization_becomes_a_bearer_header_and_is_never_echoed() -> None:
    config = parse_mcp_tool({**BASE, "authorization": "tok", "headers": {"X-A": "1"}}, "tools[0]")
    assert dict(config.headers) == {"X-A": "1", "Authorization": "Bearer tok"}
    echoed = config.echoed()
    assert "authorization" not in echoed and echoed["headers"] is None
    assert echoed["require_approval"] == "never" and echoed["allowed_tools"] is None


@pytest.mark.parametrize(("approval", "expected"), [
    ("always", {"a": True, "b": True}),
    ("never", {"a": False, "b": False}),
    ({"always": {"tool_names": ["a"]}}, {"a": True, "b": False}),
    ({"never": {"tool_names": ["a"]}}, {"a": False, "b": True}),
    ({"always": {"tool_names": ["a"]}, "never": {"tool_names": ["b"]}}, {"a": True, "b": False, "c": True}),
    ({"never": {"read_only": True}}, {"ro": False, "b": True}),
])
def test_require_approval_is_never_ignored(approval: object, expected: dict[str, bool]) -> None:
    config = parse_mcp_tool({**BASE, "require_approval": approval}, "tools[0]")
    assert {name: config.needs_approval(name, name == "ro") for name in expected} == expected


def test_allowed_tools_by_names_and_by_read_only() -> None:
    by_names = parse_mcp_tool({**BASE, "allowed_tools": ["a"]}, "tools[0]")
    read_only = parse_mcp_tool({**BASE, "allowed_tools": {"read_only": True}}, "tools[0]")
    assert (by_names.allows("a", False), by_names.allows("b", True)) == (True, False)
    assert (read_only.allows("a", True), read_only.allows("a", False)) == (True, False)
    assert by_names.echoed()["allowed_tools"] == ["a"]


@pytest.mark.parametrize(("tool", "param"), [
    ({"type": "mcp", "server_url": "https://x.test"}, "tools[2].server_label"),
    ({"type": "mcp", "server_label": "s"}, "tools[2].server_url"),
    ({**BASE, "authorization": "t", "headers": {"authorization": "Bearer u"}}, "tools[2].headers"),
    ({**BASE, "require_approval": {"sometimes": {}}}, "tools[2].require_approval"),
    ({**BASE, "allowed_tools": {"read_only": "yes"}}, "tools[2].allowed_tools.read_only"),
    ({**BASE, "tunnel_id": "t1"}, "tools[2].tunnel_id"),
    ({**BASE, "colour": "blue"}, "tools[2].colour"),
])
def test_bad_fields_are_a_400_naming_them(tool: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse_mcp_tool(tool, "tools[2]")
    assert raised.value.param == param
