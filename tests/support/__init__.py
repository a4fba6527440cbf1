"""Test helpers that are not fixtures: the fault proxy."""
