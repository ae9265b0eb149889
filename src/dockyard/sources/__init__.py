"""Descriptors read from git: sources, their rules, and descriptor reading."""
