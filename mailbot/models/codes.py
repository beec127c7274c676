"""Code knowledge base tables (filled in by the code knowledge base work)."""
