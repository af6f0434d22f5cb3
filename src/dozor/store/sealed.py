"""Column types that seal what they store (``privacy.keys``), so the rest of the code
reads and writes plain values.

- ``SealedText`` and ``SealedJSON``: secrets, sealed with the instance key (``s1:...``).
- ``PersonalText``: personal fields, sealed with their organisation's data key
  (``p1:<org_id>:...``). It takes a ``keys.Personal`` only and refuses a plain ``str``,
  so a writer that forgets whose data it writes fails at once instead of storing it
  in the clear.

A value stored before migration 0015 sealed it (any value without a prefix) is read as
it is. None is stored as NULL.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Dialect, Text
from sqlalchemy.types import TypeDecorator

from dozor.privacy import keys


class SealedText(TypeDecorator[str]):
    """A secret string, sealed with the instance key."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else keys.seal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None or not value.startswith(keys.SECRET):
            return value  # type: ignore[no-any-return]
        return keys.open_secret(value)


class SealedJSON(TypeDecorator[Any]):
    """A JSON document holding secrets (a channel's tokens and passwords), sealed whole."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else keys.seal(json.dumps(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, str) and value.startswith(keys.SECRET):
            value = keys.open_secret(value)
        return json.loads(value) if isinstance(value, str) else value


class PersonalText(TypeDecorator[str]):
    """A personal field, sealed with its organisation's data key; takes ``Personal``."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, keys.Personal):
            raise TypeError("a personal column takes keys.Personal(org_id, text) "
                            f"(from keys.personal), not {type(value).__name__}")
        return keys.seal_personal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if value.startswith(keys.PERSONAL):
            return keys.open_personal(value)
        if value.startswith(keys.SECRET):
            return keys.open_secret(value)
        return value  # type: ignore[no-any-return]


SEALED_TYPES = (SealedText, SealedJSON, PersonalText)
