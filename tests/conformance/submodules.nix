# Submodules: the `name` argument, defaults from other options, freeform submodules, lists of them.
{ lib, config, ... }:
let
  inherit (lib) mkOption types;
  machine = { name, config, ... }: {
    options.hostName = mkOption { type = types.str; default = "${name}.example.org"; };
    options.port = mkOption { type = types.port; default = 22; };
    options.url = mkOption { type = types.str; default = "ssh://${config.hostName}:${toString config.port}"; };
  };
in
{
  options.machines = mkOption { type = types.attrsOf (types.submodule machine); default = { }; };
  options.services = mkOption {
    type = types.listOf (types.submodule { options.name = mkOption { type = types.str; }; options.enable = mkOption { type = types.bool; default = true; }; });
  };
  options.settings = mkOption {
    type = types.submodule {
      freeformType = types.attrsOf types.str;
      options.level = mkOption { type = types.int; default = 1; };
    };
    default = { };
  };
  options.summary = mkOption { type = types.listOf types.str; };
  config = {
    machines.web = { };
    machines.db.port = 5432;
    machines.db.hostName = lib.mkForce "database";
    services = [ { name = "a"; } { name = "b"; enable = false; } ];
    settings = { extra = "yes"; level = 3; };
    summary = lib.mapAttrsToList (_: m: m.url) config.machines;
  };
}
