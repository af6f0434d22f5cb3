"""Dozor: self-hosted uptime monitoring and alerting."""

__version__ = "0.1.0"
