# The nixus fleet core (nixus_py/fleet/core.py) declared with the real nixpkgs lib, so that
# benchmarks/eval_scale.py can evaluate the same fleet.nix with `lib.evalModules` and compare.
# Keep the options, types and defaults in step with core.py; descriptions are left out.
{ config, lib, ... }:
let
  inherit (lib) mkOption types;

  nodeOptions = { name, ... }: {
    options = {
      enable = mkOption { type = types.bool; default = true; };
      host = mkOption { type = types.str; default = name; };
      port = mkOption { type = types.port; default = 22; };
      user = mkOption { type = types.str; default = "root"; };
      hostKeys = mkOption { type = types.listOf types.str; default = [ ]; };
      tags = mkOption { type = types.listOf types.str; default = [ ]; };
      system = mkOption { type = types.str; default = "x86_64-linux"; };
      nixpkgs = mkOption { type = types.nullOr (types.either types.path types.raw); default = null; };
      configuration = mkOption { type = types.deferredModule; default = { }; };
      successTimeout = mkOption { type = types.ints.positive; default = 20; };
      switchTimeout = mkOption { type = types.ints.positive; default = 60; };
      privilegeEscalationCommand = mkOption { type = types.listOf types.str; default = [ "sudo" "--" ]; };
      buildOn = mkOption { type = types.enum [ "local" "target" ]; default = "local"; };
      substituteOnTarget = mkOption { type = types.bool; default = false; };
      proxyJump = mkOption { type = types.nullOr types.str; default = null; };
      secrets = mkOption { type = types.attrsOf (types.submodule secretOptions); default = { }; };
      deployAfter = mkOption { type = types.listOf types.str; default = [ ]; };
      ignoreFailingSystemdUnits = mkOption { type = types.bool; default = false; };
    };
  };

  secretOptions = { name, ... }: {
    options = {
      source = mkOption { type = types.nullOr types.str; default = null; };
      generatedKey = mkOption { type = types.nullOr types.str; default = null; };
      path = mkOption { type = types.str; default = "/var/lib/nixus/secrets/${name}"; };
      user = mkOption { type = types.str; default = "root"; };
      group = mkOption { type = types.str; default = "root"; };
      mode = mkOption { type = types.strMatching "0?[0-7]{3}"; default = "0400"; };
    };
  };
in
{
  options = {
    nodes = mkOption {
      type = types.attrsOf (types.submoduleWith {
        modules = [ nodeOptions { imports = [ config.defaults ]; } ];
        specialArgs = { nodes = config.nodes; fleet = config; };
        shorthandOnlyDefinesConfig = true;
      });
      default = { };
    };
    defaults = mkOption { type = types.deferredModule; default = { }; };
    deploy.parallel = mkOption { type = types.ints.positive; default = 10; };
  };
}
