"""Who is calling: API keys, OIDC tokens, the project a request acts for, and its limits."""
