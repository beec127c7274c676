"""Test helpers that are real servers on loopback."""
