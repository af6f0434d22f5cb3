"""Channel kinds. Importing this package registers every kind (see ``base.register``)."""

# One line per kind: importing the module registers it.
from dozor.notify.channels import discord, slack, teams, telegram, webhook  # noqa: F401
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
