"""The server's side of a probe is the API and the engine: their tests' fixtures (an app,
people, a running engine) serve here too."""

from tests.api.conftest import (  # noqa: F401 (fixtures)
    app,
    client,
    fresh_limits_and_cheap_hashes,
    owner,
    stranger,
)
from tests.engine.conftest import running, settings  # noqa: F401 (fixtures)
