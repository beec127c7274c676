"""Job board tables (filled in by the job board work)."""
