# mkRenamedOptionModule, mkAliasOptionModule and mkRemovedOptionModule.
{ lib, ... }:
{
  imports = [
    (lib.mkRenamedOptionModule [ "old" "name" ] [ "new" "name" ])
    (lib.mkAliasOptionModule [ "alias" ] [ "target" ])
    (lib.mkRemovedOptionModule [ "gone" ] "Use `new.name' instead.")
  ];
  options.new.name = lib.mkOption { type = lib.types.int; };
  options.target = lib.mkOption { type = lib.types.listOf lib.types.str; };
  # Where nixpkgs' mkRemovedOptionModule puts its check (NixOS evaluates it).
  options.assertions = lib.mkOption { type = lib.types.listOf lib.types.unspecified; default = [ ]; };
  config = {
    old.name = 5;
    alias = [ "via alias" ];
    target = lib.mkAfter [ "direct" ];
    gone = true;
  };
}
