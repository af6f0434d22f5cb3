"""Field types request bodies share.

>>> from pydantic import TypeAdapter
>>> TypeAdapter(Email).validate_python(" Ala@Example.COM ")
'ala@example.com'
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from dozor.notify.points import AddressError, normalise_address


def _email(value: str) -> str:
    try:
        return normalise_address("email", value)
    except AddressError as error:
        raise ValueError(str(error)) from None


Email = Annotated[str, Field(max_length=320), AfterValidator(_email)]
Password = Annotated[str, Field(min_length=10, max_length=200)]
Language = Literal["en", "pl"]
Role = Literal["viewer", "member", "admin", "owner"]
