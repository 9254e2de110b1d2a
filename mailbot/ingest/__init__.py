"""Ingest: fetch mail (IMAP, Maildir), parse it, unpack containers, identify the sender, record and archive."""
