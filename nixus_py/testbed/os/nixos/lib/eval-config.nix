# The testbed OS's stand-in for nixpkgs' nixos/lib/eval-config.nix: nixus builds a testbed node
# exactly as it builds a NixOS node, `(import <nixpkgs>/nixos/lib/eval-config.nix { system;
# modules; }).config.system.build.toplevel`. The stand-in nixpkgs directory that nixus prepares
# has this `nixos/` next to `lib/` (the real nixpkgs lib).
{
  system ? builtins.currentSystem,
  modules ? [ ],
  specialArgs ? { },
  lib ? import ../../lib,
  ...
}:
lib.evalModules {
  class = "nixos";
  specialArgs = {
    modulesPath = ../modules;
    pkgs = import ../pkgs.nix { inherit system; };
  } // specialArgs;
  modules = [ ../modules/testbed.nix { nixpkgs.system = system; } ] ++ modules;
}
