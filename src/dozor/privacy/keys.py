"""Keys: the instance key that seals secrets, and the organisations' data keys that seal
their personal fields.

The instance key comes from ``DOZOR_SECRET_KEY`` (or ``DOZOR_SECRET_KEY_FILE``; several
keys separated by commas, newest first) or else from ``<data_dir>/instance.key``,
created with mode 0600 on first start (one key a line, newest first). The newest key
seals; every listed key opens. A process uses one keyring, installed by whatever opens
the database (``use``)::

    >>> ring = Keyring([Fernet.generate_key()], "a test")
    >>> ring.open(ring.seal("hunter2"))
    'hunter2'

Each organisation has a random data key (``data_keys``, wrapped by the instance key).
Personal fields are sealed with it as ``p1:<org_id>:<token>``, so a value names the key
that opens it; destroying the key (erasure) leaves only unreadable tokens. Unwrapped
data keys are cached for the process: all of them at start (32 bytes each), and any
created or first used here later.

Sealed addresses (``contact_points.address``, ``status_subscribers.email``,
``users.email``) are found and compared in SQL by a keyed digest stored beside them:
``digest(kind, address)``, the hex HMAC-SHA256 of the normalised address under the
installation's *lookup key*. The lookup key is random, made once by migration 0016 and
stored in ``instance_keys`` wrapped by the instance key, so a rotation (``dozor privacy
rotate-key``, also ``--drop-old``) only re-wraps it, like a data key: digests never
change and need no recomputing, and no lookup misses while a rotation runs. (Deriving it
from an instance key would tie it to a key that rotation replaces and drops.) A digest
shows which stored addresses are equal, across the installation; without the lookup key
it reveals nothing else::

    >>> digest("sms", "+48600100200") == digest("sms", "+48600100200")  # doctest: +SKIP
    True
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dozor.settings import Settings
from dozor.store import upsert

# The tables are imported where they are used: they import the column types of
# ``store.sealed``, which import this module (so importing a table module first worked).

SECRET = "s1:"  # sealed with the instance key
PERSONAL = "p1:"  # sealed with an organisation's data key: p1:<org_id>:<token>
KEY_FILE = "instance.key"
LOOKUP = "lookup"  # the instance_keys row of the digests' key
log = logging.getLogger(__name__)
SETTING = "DOZOR_SECRET_KEY"


class KeyUnavailable(Exception):
    """A sealed value cannot be opened (wrong or missing key); the message says which
    setting or file holds the key."""


@dataclass(frozen=True, slots=True)
class Personal:
    """A personal value to store, with the organisation whose data key seals it (None:
    the instance key, for records that belong to no organisation). Personal columns
    refuse a plain ``str``, so a writer that forgets this is caught::

        insert(sessions).values(ip=await keys.personal(conn, org_id, ip))
    """

    org_id: int | None
    text: str

    @classmethod
    def of(cls, org_id: int | None, text: str | None) -> Personal | None:
        """None stays None (a NULL column); call ``ensure`` for ``org_id`` first."""
        return None if text is None else cls(org_id, text)


class Keyring:
    """The instance keys, newest (primary) first; ``source`` names where they came from."""

    def __init__(self, keys: Sequence[bytes], source: str, path: Path | None = None) -> None:
        if not keys:
            raise KeyUnavailable(f"{source}: no key")
        self.keys = list(keys)
        self.source = source
        self.path = path  # the key file, read again when it changes (a rotation)
        self.read_at = path.stat().st_mtime_ns if path is not None else None
        self._primary = Fernet(self.keys[0])
        self._all = MultiFernet([Fernet(k) for k in self.keys])

    @property
    def fingerprint(self) -> str:
        """A short name for the primary key (never the key)."""
        return hashlib.sha256(self.keys[0]).hexdigest()[:12]

    def seal(self, text: str) -> str:
        return SECRET + self.encrypt(text.encode()).decode()

    def open(self, sealed: str) -> str:
        return self.decrypt(sealed.removeprefix(SECRET).encode()).decode()

    def encrypt(self, data: bytes) -> bytes:
        return self._primary.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        try:
            return self._all.decrypt(token)
        except InvalidToken:
            raise KeyUnavailable(
                f"a sealed value does not open with the instance key from {self.source}: "
                f"it was sealed with another key. Set {SETTING} (or {SETTING}_FILE) to the "
                f"key that sealed it, or restore the key file {KEY_FILE} it came "
                "with.") from None

    def is_primary(self, token: bytes) -> bool:
        """Whether the newest key alone opens ``token`` (rotation skips such values)."""
        try:
            self._primary.decrypt(token)
        except InvalidToken:
            return False
        return True


_ring: Keyring | None = None


def install(ring: Keyring | None) -> None:
    """Make ``ring`` the process's keyring (None: none, as before start)."""
    global _ring
    _ring = ring


def use(settings: Settings) -> Keyring:
    """The process's keyring, loaded from ``settings`` the first time. A process serves
    one installation, so later calls keep the keyring already in use."""
    if _ring is None:
        install(load(settings))
    assert _ring is not None
    return _ring


def current() -> Keyring:
    if _ring is None:
        raise KeyUnavailable(f"no instance key is loaded (from {SETTING} or "
                             f"<data_dir>/{KEY_FILE}); sealed values cannot be read")
    return _ring


def load(settings: Settings) -> Keyring:
    """The keyring ``settings`` name: the setting's keys, or the key file's (created with
    one new key when missing)."""
    configured = settings.secret_key.get_secret_value()
    if configured:
        return Keyring(parse_keys(configured.replace(",", "\n"), SETTING), SETTING)
    path = key_file(settings)
    if not path.exists():
        create_key_file(path)
    return Keyring(read_key_file(path), str(path), path)


def key_file(settings: Settings) -> Path:
    return settings.data_dir / KEY_FILE


def parse_keys(text: str, source: str) -> list[bytes]:
    """Fernet keys, one a line (blank lines and ``#`` comments skipped)."""
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            if len(base64.urlsafe_b64decode(line.encode())) != 32:
                raise ValueError
        except (ValueError, binascii.Error):
            raise KeyUnavailable(f"{source}: line {number} is not a key (32 bytes in "
                                 "URL-safe base64, as Fernet.generate_key() makes)") from None
        keys.append(line.encode())
    if not keys:
        raise KeyUnavailable(f"{source}: holds no key")
    return keys


def read_key_file(path: Path) -> list[bytes]:
    try:
        return parse_keys(path.read_text(), str(path))
    except OSError as error:
        raise KeyUnavailable(f"cannot read the key file {path}: {error.strerror}") from None


def create_key_file(path: Path) -> None:
    """Write a new key file (mode 0600) unless another process was first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        write_key_file(path, [Fernet.generate_key()], replace=False)


def write_key_file(path: Path, keys: Sequence[bytes], *, replace: bool = True) -> None:
    """Write ``keys`` (newest first) to ``path`` in one step: readers see the old file or
    the new one, never a part."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(b"".join(k + b"\n" for k in keys))
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)  # fails if the file exists: first writer wins
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def seal(text: str) -> str:
    """``text`` sealed with the instance key (``s1:...``)."""
    return current().seal(text)


def open_secret(sealed: str) -> str:
    return current().open(sealed)


# The organisations' data keys, unwrapped: org id -> (wrapped form, key).
_data: dict[int, tuple[str, Fernet]] = {}


async def load_data_keys(connection: AsyncConnection) -> int:
    """Unwrap every organisation's data key into the cache (at start); how many."""
    from dozor.store.tables import data_keys

    rows = (await connection.execute(select(data_keys.c.org_id, data_keys.c.wrapped))).all()
    _data.clear()
    for org_id, wrapped in rows:
        _remember(org_id, wrapped)
    await load_lookup_key(connection)
    return len(rows)


async def refresh(connection: AsyncConnection) -> None:
    """Load keys created (or drop keys erased) by other processes since the last look:
    one count while nothing changed."""
    from dozor.store.tables import data_keys

    count = (await connection.execute(select(func.count()).select_from(data_keys))).scalar()
    if count != len(_data):
        await load_data_keys(connection)


async def watch(database: AsyncEngine, every: float = 2.0) -> asyncio.Task[None]:
    """Load every data key now, then keep up with other processes (a command that made an
    organisation) in the background; cancel the task at stop."""
    async with database.connect() as connection:
        await load_data_keys(connection)

    async def loop() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                _reread_key_file()
                async with database.connect() as connection:
                    await refresh(connection)
            except (OSError, DBAPIError) as error:  # the next round tries again
                log.warning("cannot refresh the data keys: %s", error)

    return asyncio.create_task(loop(), name="data-keys")


def _reread_key_file() -> None:
    """Take up the key file again when a rotation (another process) rewrote it."""
    ring = _ring
    if ring is None or ring.path is None:
        return
    try:
        changed = ring.path.stat().st_mtime_ns != ring.read_at
        if changed:
            install(Keyring(read_key_file(ring.path), ring.source, ring.path))
    except (OSError, KeyUnavailable) as error:
        log.warning("cannot read the key file again: %s", error)


async def stop_watching(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def personal(connection: AsyncConnection, org_id: int | None,
                   text: str | None) -> Personal | None:
    """``text`` ready for a personal column of ``org_id``, whose data key this makes sure
    of (creating it on first need)."""
    if text is None:
        return None
    if org_id is not None:
        await ensure(connection, org_id)
    return Personal(org_id, text)


async def ensure(connection: AsyncConnection, org_id: int) -> None:
    """Make sure ``org_id`` has a data key, stored and cached. The stored one is read each
    time (one primary-key look-up): a key cached by a transaction that rolled back, or
    replaced by another process, is never used to write."""
    from dozor.store.tables import data_keys

    query = select(data_keys.c.wrapped).where(data_keys.c.org_id == org_id)
    wrapped = (await connection.execute(query)).scalar()
    if wrapped is None:
        new = current().encrypt(Fernet.generate_key()).decode()
        await upsert.insert_missing(connection, data_keys, {
            "org_id": org_id, "wrapped": new, "created_at": datetime.now(UTC)})
        wrapped = (await connection.execute(query)).scalar_one()
    cached = _data.get(org_id)
    if cached is None or cached[0] != wrapped:
        _remember(org_id, wrapped)


def _remember(org_id: int, wrapped: str) -> None:
    _data[org_id] = (wrapped, Fernet(current().decrypt(wrapped.encode())))


def forget(org_id: int) -> None:
    """Drop ``org_id``'s data key from the cache (erasure deletes its row)."""
    _data.pop(org_id, None)


def forget_all() -> None:
    global _lookup
    _data.clear()
    _lookup = None


# The lookup key, unwrapped: it never changes (rotation re-wraps it), so it is read once.
_lookup: bytes | None = None


async def load_lookup_key(connection: AsyncConnection) -> None:
    """Unwrap the lookup key into the cache (migration 0016 made it)."""
    from dozor.store.tables import instance_keys

    global _lookup
    query = select(instance_keys.c.wrapped).where(instance_keys.c.name == LOOKUP)
    wrapped = (await connection.execute(query)).scalar()
    if wrapped is not None:
        _lookup = current().decrypt(wrapped.encode())


def digest(kind: str, address: str) -> str:
    """The keyed digest SQL finds a sealed address by (hex HMAC-SHA256 of kind and the
    normalised address under the lookup key); needs the key loaded (``digest_of`` makes
    sure of that)."""
    if _lookup is None:
        raise KeyUnavailable("the lookup key is not loaded (it comes with migration 0016: "
                             "run dozor migrate)")
    return digest_with(_lookup, kind, address)


def digest_with(key: bytes, kind: str, address: str) -> str:
    """``digest`` under ``key`` (migration 0016 computes the stored digests with it)."""
    return hmac.new(key, f"{kind}\0{address}".encode(), hashlib.sha256).hexdigest()


async def digest_of(connection: AsyncConnection, kind: str, address: str) -> str:
    """``digest(kind, address)``, loading the lookup key first if this process has not::

        p.address_digest == await keys.digest_of(connection, "sms", "+48600100200")
    """
    if _lookup is None:
        await load_lookup_key(connection)
    return digest(kind, address)


def seal_personal(value: Personal) -> str:
    if value.org_id is None:
        return seal(value.text)
    token = _data_key(value.org_id).encrypt(value.text.encode()).decode()
    return f"{PERSONAL}{value.org_id}:{token}"


def open_personal(sealed: str) -> str:
    org, _, token = sealed.removeprefix(PERSONAL).partition(":")
    try:
        return _data_key(int(org)).decrypt(token.encode()).decode()
    except InvalidToken:
        raise KeyUnavailable(f"a personal value of organisation {org} does not open with "
                             "its data key (the key was replaced)") from None


def _data_key(org_id: int) -> Fernet:
    cached = _data.get(org_id)
    if cached is None:
        raise KeyUnavailable(
            f"no data key for organisation {org_id} in this process: it was erased, or "
            "created by another process since this one started (it is loaded within "
            "seconds; a restart loads it too)")
    return cached[1]
