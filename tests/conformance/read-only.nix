# A read-only option may be defined once (its default counts as a definition).
{ lib, ... }:
{
  options.once = lib.mkOption { type = lib.types.int; readOnly = true; };
  options.withDefault = lib.mkOption { type = lib.types.int; readOnly = true; default = 1; };
  config.once = 1;
  config.withDefault = 2;
}
