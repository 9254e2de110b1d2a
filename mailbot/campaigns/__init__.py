"""Campaigns: what staff manage (the roster, extensions, review of held messages)."""
