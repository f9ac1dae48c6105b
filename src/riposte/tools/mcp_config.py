"""A request's `{"type": "mcp", ...}` tool: parsed and validated (a 400 naming the field), its echo,
and the two per-tool decisions it makes: which listed tools the model may see (`allowed_tools`)
and which calls wait for the client's approval (`require_approval`). Pure; no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from riposte.errors import InvalidRequestError

_FIELDS = ("type", "server_label", "server_url", "headers", "authorization", "allowed_tools", "require_approval",
           "server_description")
# Fields of the SDK's Mcp tool that name things this server does not have: rejected when set.
_UNSUPPORTED = ("connector_id", "tunnel_id", "allowed_callers", "defer_loading")


@dataclass(frozen=True)
class ToolFilter:
    """`{tool_names, read_only}`: a tool matches when it passes every part that is given."""

    tool_names: frozenset[str] | None = None
    read_only: bool | None = None

    def matches(self, name: str, read_only: bool) -> bool:
        if self.tool_names is not None and name not in self.tool_names:
            return False
        return self.read_only is None or self.read_only == read_only

    def echoed(self) -> dict[str, Any]:
        echo: dict[str, Any] = {}
        if self.tool_names is not None:
            echo["tool_names"] = sorted(self.tool_names)
        if self.read_only is not None:
            echo["read_only"] = self.read_only
        return echo


@dataclass(frozen=True)
class McpConfig:
    server_label: str
    server_url: str
    headers: Mapping[str, str]
    raw: Mapping[str, Any]
    allowed: ToolFilter | None = None
    # "always", "never", or the filter pair (always, never).
    approval: str | tuple[ToolFilter | None, ToolFilter | None] = "never"
    server_description: str | None = None

    def allows(self, name: str, read_only: bool) -> bool:
        return self.allowed is None or self.allowed.matches(name, read_only)

    def needs_approval(self, name: str, read_only: bool) -> bool:
        """`require_approval` is never ignored: a tool the filters do not settle asks."""
        if isinstance(self.approval, str):
            return self.approval == "always"
        always, never = self.approval
        if never is not None and never.matches(name, read_only):
            return False
        if always is not None and always.matches(name, read_only):
            return True
        # Unsettled: only an `always` filter means "these, and no others"; anything else asks.
        return not (always is not None and never is None)

    def same_listing_as(self, other: Mapping[str, Any]) -> bool:
        """Whether an earlier request's echoed tool lists the same tools of the same server."""
        return (other.get("type") == "mcp" and other.get("server_label") == self.server_label
                and other.get("server_url") == self.server_url
                and other.get("allowed_tools") == self.echoed().get("allowed_tools"))

    def echoed(self) -> dict[str, Any]:
        """The tool as the response echoes it: concrete values, and never the secrets."""
        echo: dict[str, Any] = {"type": "mcp", "server_label": self.server_label, "server_url": self.server_url,
                                "allowed_tools": None, "headers": None, "require_approval": "never",
                                "server_description": self.server_description}
        if self.allowed is not None:
            names = self.raw.get("allowed_tools")
            echo["allowed_tools"] = list(names) if isinstance(names, list) else self.allowed.echoed()
        if isinstance(self.approval, str):
            echo["require_approval"] = self.approval
        else:
            echo["require_approval"] = {key: f.echoed() for key, f in zip(("always", "never"), self.approval,
                                                                         strict=True) if f is not None}
        return echo


def parse_mcp_tool(tool: Mapping[str, Any], param: str) -> McpConfig:
    for name in _UNSUPPORTED:
        if tool.get(name) is not None:
            raise _invalid(f"{param}.{name}", f"'{name}' is not supported by this server; give a server_url.")
    unknown = sorted(set(tool) - set(_FIELDS) - set(_UNSUPPORTED))
    if unknown:
        raise _invalid(f"{param}.{unknown[0]}", f"Unknown parameter '{unknown[0]}' for an mcp tool.")
    label = tool.get("server_label")
    if not isinstance(label, str) or not label.strip():
        raise _invalid(f"{param}.server_label", "An mcp tool needs a non-empty 'server_label'.")
    url = tool.get("server_url")
    if not isinstance(url, str) or not url:
        raise _invalid(f"{param}.server_url", "An mcp tool needs a 'server_url'.")
    description = tool.get("server_description")
    if description is not None and not isinstance(description, str):
        raise _invalid(f"{param}.server_description", "'server_description' must be a string.")
    return McpConfig(server_label=label, server_url=url, headers=_headers(tool, param), raw=dict(tool),
                     allowed=_allowed(tool.get("allowed_tools"), f"{param}.allowed_tools"),
                     approval=_approval(tool.get("require_approval"), f"{param}.require_approval"),
                     server_description=description)


def _headers(tool: Mapping[str, Any], param: str) -> dict[str, str]:
    headers = tool.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in headers.items()):
        raise _invalid(f"{param}.headers", "'headers' must map header names to string values.")
    token = tool.get("authorization")
    if token is None:
        return dict(headers)
    if not isinstance(token, str) or not token:
        raise _invalid(f"{param}.authorization", "'authorization' must be a non-empty token string.")
    if any(name.lower() == "authorization" for name in headers):
        raise _invalid(f"{param}.headers", "Give the token either as 'authorization' or as an Authorization "
                                           "header, not both.")
    return {**headers, "Authorization": f"Bearer {token}"}


def _allowed(raw: Any, param: str) -> ToolFilter | None:
    if raw is None:
        return None
    if isinstance(raw, list):
        if not all(isinstance(name, str) for name in raw):
            raise _invalid(param, "'allowed_tools' must list tool names.")
        return ToolFilter(tool_names=frozenset(raw))
    return _filter(raw, param)


def _approval(raw: Any, param: str) -> str | tuple[ToolFilter | None, ToolFilter | None]:
    if raw is None:
        return "never"
    if raw in ("always", "never"):
        return str(raw)
    if not isinstance(raw, dict) or not raw or set(raw) - {"always", "never"}:
        raise _invalid(param, "'require_approval' must be 'always', 'never', or {always: {...}, never: {...}}.")
    always, never = (_filter(raw[key], f"{param}.{key}") if raw.get(key) is not None else None
                     for key in ("always", "never"))
    return always, never


def _filter(raw: Any, param: str) -> ToolFilter:
    if not isinstance(raw, dict) or set(raw) - {"tool_names", "read_only"}:
        raise _invalid(param, "expected a filter object {tool_names, read_only}.")
    names = raw.get("tool_names")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise _invalid(f"{param}.tool_names", "'tool_names' must be a list of tool names.")
    read_only = raw.get("read_only")
    if read_only is not None and not isinstance(read_only, bool):
        raise _invalid(f"{param}.read_only", "'read_only' must be a boolean.")
    return ToolFilter(tool_names=frozenset(names) if names is not None else None, read_only=read_only)


def _invalid(param: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=param, code="invalid_value")
