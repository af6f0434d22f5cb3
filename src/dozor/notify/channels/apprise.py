"""Apprise: the long tail of 100+ notification services (ntfy, Gotify, Pushover, Matrix,
Mattermost, ...) through the ``apprise`` library, one Apprise URL per contact point.

Provider quirks:

- Apprise tells only whether a service took the message: success, failure, or timeout.
  A failure cannot be told apart (bad token or a service down), so it is transient and
  the reason says Apprise gives no classifiable detail (with its last log line). There
  are no delivery reports either: receipts say ``tracked=False``.
- Apprise's plugins are synchronous (``requests``); its ``async_notify`` runs them in its
  own worker threads, and its ``timeout`` makes it stop waiting after
  ``context.timeout``, which the call is also bounded by. A plugin thread it stopped
  waiting for may still finish later (at-least-once, like any timeout).
- Only the library is used, never its command line: no ``~/.apprise`` or
  ``APPRISE_*`` config, no plugin paths, persistent storage in memory only, language and
  time zone fixed, result logs kept in memory. Loading the ~250 built-in plugins takes a
  few hundred milliseconds and happens once, in a worker thread, on first use.
- An address that no plugin accepts (unknown scheme, missing token) is a permanent
  error of the point. ``schemes`` in the config may restrict which services are allowed
  (Apprise makes its own requests, outside Dozor's outbound guard).
"""

from __future__ import annotations

import asyncio
import functools
import warnings
from typing import ClassVar

from apprise import (
    Apprise,
    AppriseAsset,
    AppriseResult,
    AppriseResultStatus,
    NotifyBase,
    NotifyFormat,
    NotifyType,
    PersistentStoreMode,
)

from dozor.notify.channels.base import (
    ChannelConfig,
    ChannelContext,
    ContactPoint,
    DeliveryError,
    Message,
    Receipt,
    register,
)

NOTIFY_TYPES = {"down": NotifyType.FAILURE, "up": NotifyType.SUCCESS}
GRACE = 1.0  # seconds past context.timeout for Apprise to report its own timeout


class AppriseConfig(ChannelConfig):
    # Allowed URL schemes ("ntfys", "gotify", ...); None allows every Apprise service.
    schemes: frozenset[str] | None = None


@register
class AppriseChannel:
    """Sends alerts to any service Apprise knows, addressed by an Apprise URL.

    >>> from dozor.outbound import Outbound
    >>> channel = AppriseChannel(AppriseConfig(schemes={"ntfys"}),
    ...                          ChannelContext(outbound=Outbound("dozor")))
    >>> channel.point_kind
    'apprise'

    ``await channel.send(message, point)`` with ``point.address`` like
    ``ntfys://ntfy.example.org/alerts`` returns ``Receipt(provider_id=None,
    tracked=False)``: Apprise never reports delivery.
    """

    kind: ClassVar[str] = "apprise"
    point_kind: ClassVar[str] = "apprise"
    Config: ClassVar[type[ChannelConfig]] = AppriseConfig

    def __init__(self, config: AppriseConfig, context: ChannelContext) -> None:
        self.config = config
        self.context = context

    async def send(self, message: Message, point: ContactPoint) -> Receipt:
        self._check_scheme(point.address)
        service = await asyncio.to_thread(_service, point.address)
        if service is None:
            raise DeliveryError("not an Apprise URL that any Apprise service accepts "
                                "(unknown scheme, or missing or invalid parts)",
                                permanent=True)
        notifier = Apprise(asset=_asset())
        notifier.add(service)
        body = f"{message.text}\n{message.link}" if message.link else message.text
        try:
            async with asyncio.timeout(self.context.timeout + GRACE):
                result = await notifier.async_notify(
                    body=body, title=message.subject, body_format=NotifyFormat.TEXT,
                    notify_type=NOTIFY_TYPES.get(message.event, NotifyType.INFO),
                    timeout=self.context.timeout)
        except TimeoutError:
            raise self._timed_out() from None
        with result:
            return self._receipt(result)

    def _check_scheme(self, address: str) -> None:
        scheme = address.partition("://")[0].lower()
        if self.config.schemes is not None and scheme not in self.config.schemes:
            allowed = ", ".join(sorted(self.config.schemes)) or "none"
            raise DeliveryError(f"Apprise service {scheme}:// is not allowed on this channel "
                                f"(allowed: {allowed})", permanent=True)

    def _receipt(self, result: AppriseResult) -> Receipt:
        if result.status == AppriseResultStatus.SUCCESS:
            return Receipt(provider_id=None, tracked=False)
        if result.status == AppriseResultStatus.TIMEOUT:
            raise self._timed_out()
        said = [entry.message for entry in result.logs()
                if entry.level in ("WARNING", "ERROR", "CRITICAL")]
        last = f"; its log says: {said[-1][:200]}" if said else ""
        raise DeliveryError("Apprise reports the notification failed and gives no detail "
                            f"that tells a lasting failure from a passing one{last}",
                            permanent=False, provider_code=result.status.name)

    def _timed_out(self) -> DeliveryError:
        return DeliveryError(f"the Apprise service did not finish within "
                             f"{self.context.timeout:g} s", permanent=False)


@functools.cache
def _asset() -> AppriseAsset:
    """One asset for every send: nothing from the environment, nothing on disk."""
    return AppriseAsset(storage_mode=PersistentStoreMode.MEMORY, language="en",
                        timezone="UTC", result_log_disk_size=0)


def _service(url: str) -> NotifyBase | None:
    """The Apprise plugin instance for a URL, or None (runs in a worker thread)."""
    _load_plugins()
    return Apprise.instantiate(url, asset=_asset())


@functools.cache
def _load_plugins() -> None:
    # Loading imports every plugin module; the PGP support in the email plugin imports
    # the deprecated imghdr on Python < 3.13, a warning we can do nothing about.
    from apprise.plugins import N_MGR

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="'imghdr' is deprecated",
                                category=DeprecationWarning)
        N_MGR.load_modules()  # type: ignore[no-untyped-call]  # untyped in Apprise
