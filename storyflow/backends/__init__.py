"""Backends: one contract per kind (base.py), looked up by name (registry.py)."""
