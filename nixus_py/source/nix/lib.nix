# The `lib` a fleet.nix sees: the real nixpkgs lib, with the module-system functions replaced by
# constructors of plain data. nixus evaluates that data with its own module system, so a whole
# fleet needs a few nix-instantiate runs instead of one per option.
{ lib, seesUnknown }:
let
  inherit (builtins) isList;
  toList = x: if isList x then x else [ x ];
  mkType = name: args: {
    _type = "nixus-type";
    inherit name args;
  };
  prop = type: attrs: attrs // { _type = type; };

  ints = {
    between = lowest: highest: mkType "ints.between" { inherit lowest highest; };
    unsigned = mkType "ints.unsigned" { };
    positive = mkType "ints.positive" { };
    u8 = mkType "ints.u8" { };
    u16 = mkType "ints.u16" { };
    u32 = mkType "ints.u32" { };
    s8 = mkType "ints.s8" { };
    s16 = mkType "ints.s16" { };
    s32 = mkType "ints.s32" { };
  };

  types = {
    inherit ints;
    port = ints.u16;
    unspecified = mkType "unspecified" { };
    bool = mkType "bool" { };
    int = mkType "int" { };
    float = mkType "float" { };
    number = mkType "number" { };
    str = mkType "str" { };
    nonEmptyStr = mkType "nonEmptyStr" { };
    singleLineStr = mkType "singleLineStr" { };
    lines = mkType "lines" { };
    commas = mkType "commas" { };
    envVar = mkType "envVar" { };
    separatedString = sep: mkType "separatedString" { inherit sep; };
    strMatching = pattern: mkType "strMatching" { inherit pattern; };
    path = mkType "path" { };
    package = mkType "package" { };
    anything = mkType "anything" { };
    attrs = mkType "attrs" { };
    raw = mkType "raw" { };
    enum = values: mkType "enum" { inherit values; };
    nullOr = elemType: mkType "nullOr" { inherit elemType; };
    listOf = elemType: mkType "listOf" { inherit elemType; };
    nonEmptyListOf = elemType: mkType "nonEmptyListOf" { inherit elemType; };
    attrsOf = elemType: mkType "attrsOf" { inherit elemType; };
    lazyAttrsOf = elemType: mkType "lazyAttrsOf" { inherit elemType; };
    uniq = elemType: mkType "uniq" { inherit elemType; };
    unique = { message }: elemType: mkType "unique" { inherit message elemType; };
    either = left: right: mkType "either" { inherit left right; };
    oneOf = ts: mkType "oneOf" { types = ts; };
    coercedTo = from: coerce: to: mkType "coercedTo" { inherit from coerce to; };
    addCheck = elemType: check: mkType "addCheck" { inherit elemType check; };
    submodule = modules: mkType "submodule" {
      modules = toList modules;
      shorthandOnlyDefinesConfig = true;
    };
    # specialArgs stay in Nix (often `lib` itself): the driver passes them to the Nix modules it applies.
    submoduleWith =
      { modules, specialArgs ? { }, shorthandOnlyDefinesConfig ? false, description ? null, ... }:
      mkType "submodule" {
        inherit modules shorthandOnlyDefinesConfig description;
        specialArgs = builtins.mapAttrs (_: value: { _type = "nixus-opaque"; inherit value; }) specialArgs;
      };
    deferredModule = mkType "deferredModule" { staticModules = [ ]; };
    deferredModuleWith = { staticModules ? [ ] }: mkType "deferredModule" { inherit staticModules; };
    nixValue = mkType "nixValue" { };
    optionType = mkType "optionType" { };
  };

  # nixpkgs' types that nixus does not offer fail when used, saying so (not as a missing attribute).
  notSupported = prefix: builtins.mapAttrs (n: _: throw "nixus: lib.types.${prefix}${n} is not supported by nixus");
  catalogue = notSupported "" lib.types // types // { ints = notSupported "ints." lib.types.ints // ints; };

  overrides = rec {
    types = catalogue;
    mkOption = attrs: attrs // { _type = "option"; };
    mkEnableOption = name: mkOption {
      type = types.bool;
      default = false;
      example = true;
      description = "Whether to enable ${name}.";
    };
    mkIf = condition: content: prop "if" { inherit condition content; };
    mkMerge = contents: prop "merge" { inherit contents; };
    mkOverride = priority: content: prop "override" { inherit priority content; };
    mkOptionDefault = mkOverride 1500;
    mkDefault = mkOverride 1000;
    mkImageMediaOverride = mkOverride 60;
    mkForce = mkOverride 50;
    mkVMOverride = mkOverride 10;
    mkOrder = priority: content: prop "order" { inherit priority content; };
    mkBefore = mkOrder 500;
    mkAfter = mkOrder 1500;
    mkRenamedOptionModule = from: to: prop "nixus-rename" { kind = "renamed"; inherit from to; };
    mkAliasOptionModule = from: to: prop "nixus-rename" { kind = "alias"; inherit from to; };
    mkRemovedOptionModule = option: instructions:
      prop "nixus-rename" { kind = "removed"; inherit option instructions; };
    evalModules = _: throw "nixus: lib.evalModules is not available to fleet.nix modules";
    tryEval = e: let r = builtins.tryEval e; in if r.success then r else seesUnknown r;
  };
in
lib
// overrides
// {
  options = lib.options // { inherit (overrides) mkOption mkEnableOption; };
  modules = lib.modules // {
    inherit (overrides) mkIf mkMerge mkOverride mkOptionDefault mkDefault mkForce mkOrder mkBefore mkAfter
      mkRenamedOptionModule mkAliasOptionModule mkRemovedOptionModule;
  };
}
