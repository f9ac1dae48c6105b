"""OIDC bearer tokens: signed by a locally generated key, its JWKS served on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import openai
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from riposte.auth.settings import AuthSettings, OidcSettings
from tests.conftest import ServerFactory

ISSUER = "https://idp.example"
AUDIENCE = "riposte"


class IdentityProvider:
    """A signing key and a JWKS endpoint on a loopback port."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwks = json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(jwks)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.jwks_url = f"http://127.0.0.1:{self.http.server_address[1]}/jwks.json"

    def token(self, key: Any = None, **claims: Any) -> str:
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": int(time.time()) + 300, **claims}
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    yield provider
    provider.http.shutdown()


def test_tokens_map_a_claim_to_a_project(sqlite_server: ServerFactory, idp: IdentityProvider) -> None:
    oidc = OidcSettings(jwks_url=idp.jwks_url, issuer=ISSUER, audience=AUDIENCE, project_claim="team",
                        admin_claim="roles", admin_value="riposte-admin")
    server = sqlite_server(auth=AuthSettings(oidc=oidc))

    def as_team(team: str, **claims: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=server.base_url, api_key=idp.token(team=team, **claims), max_retries=0)

    mine = as_team("red").conversations.create(metadata={"who": "red"})
    assert as_team("red").conversations.retrieve(mine.id).id == mine.id
    with pytest.raises(openai.NotFoundError):
        as_team("blue").conversations.retrieve(mine.id)
    admin = as_team("blue", roles=["riposte-admin"])
    assert admin.conversations.retrieve(mine.id).metadata == {"who": "red"}

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = [
        idp.token(key=other_key, team="red"),  # signed by someone else
        idp.token(team="red", exp=int(time.time()) - 3600),  # expired
        idp.token(team="red", aud="someone-else"),
        idp.token(),  # no project claim
        "not.a.jwt",
    ]
    for token in refused:
        reply = httpx.get(f"{server.base_url}/conversations/{mine.id}", headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 401, token
        assert reply.json()["error"]["type"] == "invalid_request_error"
