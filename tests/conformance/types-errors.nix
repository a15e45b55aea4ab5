# One bad definition per option under `bad`: each is read on its own.
{ lib, ... }:
let
  inherit (lib) mkOption types;
  option = type: mkOption { inherit type; };
in
{
  imports = [ { bad.conflict = "one"; bad.uniq = 1; bad.bool = false; } ];
  options.bad = {
    port = option types.port;
    float = option types.float;
    str = option types.str;
    nonEmptyStr = option types.nonEmptyStr;
    path = option types.path;
    enum = option (types.enum [ "a" "b" ]);
    listOf = option (types.listOf types.int);
    attrsOf = option (types.attrsOf types.bool);
    conflict = option types.str;
    uniq = option (types.uniq types.int);
    bool = option types.bool;
    either = option (types.either types.int types.bool);
    strMatching = option (types.strMatching "[a-z]+");
  };
  config.bad = {
    port = 70000;
    float = 1;
    str = 1;
    nonEmptyStr = " ";
    path = "relative/path";
    enum = "c";
    listOf = [ 1 "two" ];
    attrsOf = { a = true; b = "no"; };
    conflict = "two";
    uniq = 1;
    bool = true;
    either = "neither";
    strMatching = "ABC";
  };
}
