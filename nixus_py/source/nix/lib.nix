# The `lib` a fleet.nix sees: the real nixpkgs lib, with the module-system functions replaced by
# constructors of plain data. nixus evaluates that data with its own module system, so a whole
# fleet needs a few nix-instantiate runs instead of one per option.
# (`ownTypes`: only the types nixus builds itself, for its tests.)
{ lib, seesUnknown, ownTypes ? false }:
let
  inherit (builtins) isList attrNames mapAttrs unsafeGetAttrPos;
  toList = x: if isList x then x else [ x ];
  real = lib.types;
  # Each type is the real lib's, tagged with how nixus builds its own: modules read a type's
  # `description` or `check` as in nixpkgs, real lib functions take it, and nixus merges the
  # definitions of an option of that type itself. Where each attribute was defined tells the
  # driver whether a module changed the type (`types.str // { check = ...; }`).
  mkType = name: args: realType: realType // {
    __nixusType = { inherit name args; positions = mapAttrs (n: _: unsafeGetAttrPos n realType) realType; };
  };
  prop = type: attrs: attrs // { _type = type; };

  ints = {
    between = lowest: highest: mkType "ints.between" { inherit lowest highest; } (real.ints.between lowest highest);
    unsigned = mkType "ints.unsigned" { } real.ints.unsigned;
    positive = mkType "ints.positive" { } real.ints.positive;
    u8 = mkType "ints.u8" { } real.ints.u8;
    u16 = mkType "ints.u16" { } real.ints.u16;
    u32 = mkType "ints.u32" { } real.ints.u32;
    s8 = mkType "ints.s8" { } real.ints.s8;
    s16 = mkType "ints.s16" { } real.ints.s16;
    s32 = mkType "ints.s32" { } real.ints.s32;
  };

  simple = name: mkType name { } real.${name};
  types = lib.genAttrs [ "unspecified" "bool" "int" "float" "number" "str" "nonEmptyStr" "singleLineStr" "lines"
    "commas" "envVar" "path" "package" "anything" "attrs" "raw" "optionType" ] simple // {
    inherit ints;
    port = ints.u16;
    separatedString = sep: mkType "separatedString" { inherit sep; } (real.separatedString sep);
    strMatching = pattern: mkType "strMatching" { inherit pattern; } (real.strMatching pattern);
    enum = values: mkType "enum" { inherit values; } (real.enum values);
    nullOr = elemType: mkType "nullOr" { inherit elemType; } (real.nullOr elemType);
    listOf = elemType: mkType "listOf" { inherit elemType; } (real.listOf elemType);
    nonEmptyListOf = elemType: mkType "nonEmptyListOf" { inherit elemType; } (real.nonEmptyListOf elemType);
    attrsOf = elemType: mkType "attrsOf" { inherit elemType; } (real.attrsOf elemType);
    lazyAttrsOf = elemType: mkType "lazyAttrsOf" { inherit elemType; } (real.lazyAttrsOf elemType);
    uniq = elemType: mkType "uniq" { inherit elemType; } (real.uniq elemType);
    unique = { message }@args: elemType: mkType "unique" { inherit message elemType; } (real.unique args elemType);
    either = left: right: mkType "either" { inherit left right; } (real.either left right);
    oneOf = ts: mkType "oneOf" { types = ts; } (real.oneOf ts);
    coercedTo = from: coerce: to: mkType "coercedTo" { inherit from coerce to; } (real.coercedTo from coerce to);
    addCheck = elemType: check: mkType "addCheck" { inherit elemType check; } (real.addCheck elemType check);
    submodule = modules: mkType "submodule" {
      modules = toList modules;
      shorthandOnlyDefinesConfig = true;
    } (real.submodule modules);
    # specialArgs stay in Nix (often `lib` itself): the driver passes them to the Nix modules it applies.
    submoduleWith =
      { modules, specialArgs ? { }, shorthandOnlyDefinesConfig ? false, description ? null, class ? null, ... }@args:
      mkType "submodule" {
        inherit modules shorthandOnlyDefinesConfig description;
        specialArgs = builtins.mapAttrs (_: value: { _type = "nixus-opaque"; inherit value; })
          (specialArgs // lib.optionalAttrs (class != null) { _class = class; });
      } (real.submoduleWith args);
    deferredModule = mkType "deferredModule" { staticModules = [ ]; } real.deferredModule;
    deferredModuleWith = { staticModules ? [ ] }@args:
      mkType "deferredModule" { inherit staticModules; } (real.deferredModuleWith args);
    nixValue = mkType "nixValue" { } (lib.mkOptionType { name = "nixValue"; description = "Nix value"; });
  };

  # nixpkgs' types that nixus does not build itself are the real lib's: Nix applies their `check`
  # and `merge`.
  catalogue = lib.types // types // { ints = lib.types.ints // ints; };

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
    mkDefinition = { file, value, ... }@args: prop "definition" args;
    mkBefore = mkOrder 500;
    mkAfter = mkOrder 1500;
    mkRenamedOptionModule = from: to: prop "nixus-rename" { kind = "renamed"; inherit from to; };
    mkAliasOptionModule = from: to: prop "nixus-rename" { kind = "alias"; inherit from to; };
    doRename = { from, to, visible, warn, use, withPriority ? true, condition ? true }:
      prop "nixus-rename" { kind = "doRename"; inherit from to visible warn use withPriority condition; };
    mkRemovedOptionModule = option: instructions:
      prop "nixus-rename" { kind = "removed"; inherit option instructions; };
    tryEval = e: let r = builtins.tryEval e; in if r.success then r else seesUnknown r;
  };
in
if ownTypes then types else
lib
// overrides
// {
  options = lib.options // { inherit (overrides) mkOption mkEnableOption; };
  modules = lib.modules // {
    inherit (overrides) mkIf mkMerge mkOverride mkOptionDefault mkDefault mkForce mkOrder mkBefore mkAfter mkDefinition
      mkRenamedOptionModule mkAliasOptionModule mkRemovedOptionModule doRename;
  };
}
