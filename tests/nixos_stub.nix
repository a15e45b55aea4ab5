# Test-local declarations of the NixOS options that nixus's bundled modules and the examples
# set, with NixOS's names and types, so rendered modules are checked by the real module system.
# (The testbed OS will replace this with a real, buildable system.)
{ lib, ... }:
let
  inherit (lib) mkOption types;
  listOf = t: mkOption { type = types.listOf t; default = [ ]; };
in
{
  options = {
    networking.hostName = mkOption { type = types.str; default = "nixos"; };
    networking.firewall = {
      allowedTCPPorts = listOf types.port;
      allowedUDPPorts = listOf types.port;
      trustedInterfaces = listOf types.str;
    };
    networking.nat = {
      enable = mkOption { type = types.bool; default = false; };
      internalInterfaces = listOf types.str;
    };
    networking.wireguard.interfaces = mkOption {
      default = { };
      type = types.attrsOf (types.submodule {
        options = {
          ips = listOf types.str;
          listenPort = mkOption { type = types.nullOr types.port; default = null; };
          privateKeyFile = mkOption { type = types.nullOr types.str; default = null; };
          peers = listOf (types.submodule {
            options = {
              publicKey = mkOption { type = types.singleLineStr; };
              allowedIPs = listOf types.str;
              endpoint = mkOption { type = types.nullOr types.str; default = null; };
              persistentKeepalive = mkOption { type = types.nullOr types.int; default = null; };
            };
          });
        };
      });
    };
    users.users = mkOption {
      default = { };
      type = types.attrsOf (types.submodule {
        options.isNormalUser = mkOption { type = types.bool; default = false; };
        options.uid = mkOption { type = types.nullOr types.int; default = null; };
        options.openssh.authorizedKeys.keys = listOf types.singleLineStr;
      });
    };
    programs.ssh.knownHosts = mkOption {
      default = { };
      type = types.attrsOf (types.submodule {
        options.hostNames = listOf types.str;
        options.publicKey = mkOption { type = types.nullOr types.str; default = null; };
      });
    };
    services.nsd = {
      enable = mkOption { type = types.bool; default = false; };
      interfaces = mkOption { type = types.listOf types.str; default = [ "127.0.0.0" "::1" ]; };
      zones = mkOption {
        default = { };
        type = types.attrsOf (types.submodule {
          options.data = mkOption { type = types.lines; default = ""; };
          options.notify = listOf types.str;
          options.provideXFR = listOf (types.nullOr types.str);
          options.requestXFR = listOf types.str;
          options.allowNotify = listOf types.str;
        });
      };
    };
    environment.etc = mkOption {
      default = { };
      type = types.attrsOf (types.submodule { options.text = mkOption { type = types.nullOr types.lines; default = null; }; });
    };
    services.nginx.package = mkOption { type = types.raw; default = null; };
  };
}
