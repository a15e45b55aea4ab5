# Priorities (mkOverride and its named levels) and orders (mkOrder, mkBefore, mkAfter).
{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  imports = [
    {
      ok.defaultVsPlain = lib.mkDefault 1;
      ok.forceVsPlain = lib.mkForce "forced";
      ok.optionDefault = lib.mkOptionDefault [ 7 ];
      ok.twoDefaults = lib.mkDefault [ "b" ];
      ok.override = lib.mkOverride 10 "ten";
      ok.list = lib.mkBefore [ "before" ];
      ok.lines = lib.mkAfter "after";
      ok.attrsOf.a = lib.mkForce 1;
      ok.attrsOf.b = lib.mkDefault 2;
      ok.sub.x.value = lib.mkForce "forced";
      ok.merged = lib.mkMerge [ [ "m1" ] (lib.mkIf true [ "m2" ]) (lib.mkIf false [ "never" ]) ];
    }
  ];
  options.ok = {
    defaultVsPlain = mkOption { type = types.int; };
    forceVsPlain = mkOption { type = types.str; };
    optionDefault = mkOption { type = types.listOf types.int; default = [ 5 ]; };
    declaredDefault = mkOption { type = types.int; default = 5; };
    twoDefaults = mkOption { type = types.listOf types.str; };
    override = mkOption { type = types.str; };
    list = mkOption { type = types.listOf types.str; };
    lines = mkOption { type = types.lines; };
    attrsOf = mkOption { type = types.attrsOf types.int; };
    sub = mkOption {
      type = types.attrsOf (types.submodule {
        options.value = mkOption { type = types.str; default = "default"; };
        options.other = mkOption { type = types.int; default = 0; };
      });
    };
    merged = mkOption { type = types.listOf types.str; };
  };
  config.ok = {
    defaultVsPlain = 2;
    forceVsPlain = "plain";
    twoDefaults = lib.mkDefault [ "a" ];
    override = lib.mkOverride 20 "twenty";
    list = [ "plain" (lib.mkOrder 600 "x") ] ++ [ ];
    lines = lib.mkMerge [ "plain" (lib.mkOrder 400 "early") ];
    attrsOf = { a = 10; b = 20; c = lib.mkOverride 1500 3; };
    sub.x = { value = "plain"; other = 1; };
    sub.y = lib.mkDefault { other = 2; };
    merged = [ "m0" ];
  };
}
