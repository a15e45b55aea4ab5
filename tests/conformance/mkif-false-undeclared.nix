# `mkIf false` around a whole config does not hide definitions of options that do not exist.
{ lib, ... }:
{
  options.enable = lib.mkOption { type = lib.types.bool; default = false; };
  config = lib.mkIf false { undeclared.foo = 1; };
}
