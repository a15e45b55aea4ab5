"""Where a fleet comes from: fleet.py and fleet.nix files and the modules they import."""
