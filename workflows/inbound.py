"""Actors for inbound mail (filled in by the inbound mail work)."""
