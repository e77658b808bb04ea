# SPDX-License-Identifier: MIT
"""Fake InsTaG support code (instag-agent tests only)."""
