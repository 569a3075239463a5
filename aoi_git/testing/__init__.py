"""Test helpers that run real code against local stand-ins (no network, no mocks)."""
