"""Channel kinds. Importing this package registers every kind (see ``base.register``)."""

# One line per kind: importing the module registers it.
from dozor.notify.channels import (  # noqa: F401
    apprise,
    discord,
    email,
    kannel,
    messenger,
    slack,
    smpp,
    smsapi,
    teams,
    telegram,
    twilio,
    viber,
    webhook,
    whatsapp,
)
from dozor.notify.channels.base import (
    Channel,
    ChannelConfig,
    ChannelContext,
    DeliveryError,
    build_channel,
    channel_kinds,
    kinds_for_point,
)

__all__ = ["Channel", "ChannelConfig", "ChannelContext", "DeliveryError", "build_channel",
           "channel_kinds", "kinds_for_point"]
