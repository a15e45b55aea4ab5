"""Rendering: one readable, deterministic NixOS module per node."""
