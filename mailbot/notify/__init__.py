"""Notify: what mailbot sends (receipts, reminders, late notices, the digest) and the durable outbox."""
