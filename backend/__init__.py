"""Kabinet: executive cabinet backend."""
