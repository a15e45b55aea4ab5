"""nixus: evaluate a whole NixOS fleet, render per-host Nix, build and deploy it."""
