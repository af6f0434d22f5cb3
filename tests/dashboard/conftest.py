"""The API's fixtures (the app, a client, an owner, a stranger, a viewer), shared."""

from tests.api.conftest import (
    app,
    client,
    fresh_limits_and_cheap_hashes,
    owner,
    stranger,
    viewer,
)

__all__ = ["app", "client", "fresh_limits_and_cheap_hashes", "owner", "stranger", "viewer"]
