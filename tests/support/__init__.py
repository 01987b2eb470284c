"""Helpers shared by the tests (real outside programs, free ports, ...)."""
