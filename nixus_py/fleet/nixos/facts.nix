# nixus: the NixOS options of Nixus's public-ip and secrets modules, which every node imports,
# so that a Nixus fleet's configurations define them unchanged. nixus reads them too, before
# NixOS evaluates the node (nixus_py/fleet/nixos_facts.py declares the same options).
{ lib, options, ... }:
let
  inherit (lib) mkOption types;
  address = family: {
    ${family} = mkOption {
      type = types.str;
      description = "The node's public ${family} address (other nodes reach it there).";
    };
    "has${lib.toUpper (lib.substring 0 1 family)}${lib.substring 1 3 family}" = mkOption {
      type = types.bool;
      readOnly = true;
      default = options.networking.public.${family}.isDefined;
      description = "Whether the node has a public ${family} address.";
    };
  };
in
{
  options.networking.public = address "ipv4" // address "ipv6";
  options.secrets.files = mkOption {
    default = { };
    description = "Files that nixus delivers to the node outside the Nix store (Nixus's secrets).";
    type = types.attrsOf (types.submodule ({ name, ... }: {
      options.file = mkOption {
        type = types.path;
        # Where nixus delivers it: the file itself never enters the store.
        apply = _: "/var/lib/nixus/secrets/${name}";
        description = "The secret's file on the deploying machine; on the node, where it is.";
      };
      options.user = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "The user who owns the secret (else root).";
      };
      options.group = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "The group who may read the secret (instead of a user).";
      };
    }));
  };
}
