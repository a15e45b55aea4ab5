# `mkIf false` on an undeclared option still defines it: an error (optionalAttrs would hide it).
{ lib, ... }:
{
  options.enable = lib.mkOption { type = lib.types.bool; default = false; };
  config.undeclared = lib.mkIf false { foo = 1; };
}
