"""Building nodes: each node's rendered module evaluated by its nixpkgs' NixOS and built by Nix."""
