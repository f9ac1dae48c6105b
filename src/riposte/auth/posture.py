"""The default posture: with no way to authenticate, serve loopback only, and say so loudly."""

from __future__ import annotations

import ipaddress
import logging

logger = logging.getLogger("riposte.auth")


class InsecureBindError(Exception):
    pass


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_posture(host: str, auth_configured: bool, insecure_no_auth: bool) -> None:
    """Refuse a non-loopback bind without authentication unless explicitly allowed; warn otherwise."""
    if auth_configured:
        return
    if not is_loopback(host) and not insecure_no_auth:
        raise InsecureBindError(
            f"refusing to serve {host} without authentication: create a key first "
            "(riposte keys create --project NAME), configure auth.oidc, or pass --insecure-no-auth "
            "to let anyone who reaches the port use this server and its upstream keys."
        )
    where = "loopback only" if is_loopback(host) else f"{host}, WITH NO AUTHENTICATION (--insecure-no-auth)"
    logger.warning(
        "\n%s\n  RIPOSTE: no API keys are configured. Serving %s; every request acts for the\n"
        "  'default' project. Turn authentication on with: riposte keys create --project default\n%s",
        "!" * 78, where, "!" * 78,
    )
