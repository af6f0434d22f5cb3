"""The REST API under ``/api/v1``: every resource, problem+json errors, tokens and sessions."""
