# Values of the basic types, each defined in two modules where the type allows merging.
{ lib, ... }:
let
  inherit (lib) mkOption types;
  option = type: mkOption { inherit type; };
in
{
  imports = [
    {
      ok = {
        port = 8080;
        float = 0.5;
        str = "same";
        nonEmptyStr = "x";
        lines = "first";
        commas = "a";
        colons = "/bin";
        path = "/etc/hosts";
        enum = "b";
        nullOr = null;
        nullOrValue = 3;
        listOf = [ 1 2 ];
        attrsOf = { a = 1; };
        attrs = { a = 1; nested.x = 1; };
        uniq = [ "only" ];
        unspecified = { a = 1; };
        either = "str";
        oneOf = [ true ];
        u8 = 255;
        s8 = -128;
        strMatching = "abc-1";
        number = 1;
      };
    }
  ];
  options.ok = {
    port = option types.port;
    float = option types.float;
    str = option types.str;
    nonEmptyStr = option types.nonEmptyStr;
    lines = option types.lines;
    commas = option types.commas;
    colons = option (types.separatedString ":");
    path = option types.path;
    enum = option (types.enum [ "a" "b" 3 ]);
    nullOr = option (types.nullOr types.int);
    nullOrValue = option (types.nullOr types.int);
    listOf = option (types.listOf types.int);
    attrsOf = option (types.attrsOf types.int);
    attrs = option types.attrs;
    uniq = option (types.uniq (types.listOf types.str));
    unspecified = option types.unspecified;
    either = option (types.either types.int types.str);
    oneOf = option (types.oneOf [ types.int (types.listOf types.bool) ]);
    u8 = option types.ints.u8;
    s8 = option types.ints.s8;
    strMatching = option (types.strMatching "[a-z]+-[0-9]");
    number = option types.number;
  };
  config.ok = {
    str = "same";
    nonEmptyStr = "x";
    lines = "second";
    commas = "b";
    colons = "/usr/bin";
    nullOr = null;
    listOf = [ 3 ];
    attrsOf = { b = 2; };
    attrs = { b = 2; nested.y = 2; };
    unspecified = { b = 2; };
  };
}
