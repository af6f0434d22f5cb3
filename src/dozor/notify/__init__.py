"""Alert delivery: contacts and consent, the outbox, the dispatcher, the guard, channels."""
