"""Mail I/O: parsing, guards, the one intake path, listeners and sending."""
