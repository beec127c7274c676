"""Tests for the consultation workflow."""
