"""Digest scheduler (filled in by the job board work)."""
