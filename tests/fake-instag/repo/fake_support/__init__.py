"""Fake InsTaG support code (instag-agent tests only)."""
