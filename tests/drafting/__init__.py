"""Tests for mailbot.drafting."""
