# One round of evaluating fleet.nix modules for nixus.
#
# Input (JSON file): the module files, what nixus already knows of `config` (unknown values are
# marked pending and become `throw`s here), and the Nix functions nixus needs applied (submodule
# functions with their `name` and `config`, `apply`/`coerce` functions with an argument).
# Output: every module and application result as plain data. Values that need an unknown part
# of `config` come out as `{ __nixus = "pending"; }` (caught with tryEval); functions, paths and
# derivations come out as references into this same structure, so the next round or the
# rendered per-host Nix can get them back without Python ever evaluating them.
{ libPath, inputFile }:
let
  inherit (builtins)
    isAttrs isList isFunction isPath isString attrNames listToAttrs mapAttrs functionArgs
    tryEval elemAt length genList unsafeGetAttrPos hasAttr foldl' typeOf;

  realLib = import libPath;
  lib = import ./lib.nix { lib = realLib; };
  input = builtins.fromJSON (builtins.readFile inputFile);

  # --- known config, from nixus ---------------------------------------------------------
  decode = v:
    if isList v then map decode v
    else if isAttrs v then
      (if v ? __nixus then decodeSpecial v else mapAttrs (_: decode) v)
    else v;
  decodeSpecial = v:
    if v.__nixus == "pending" then throw "nixus: value not known yet"
    else if v.__nixus == "path" then /. + v.path
    else if v.__nixus == "ref" then resolve v.ref
    else if v.__nixus == "deferred" then { imports = map decode v.modules; }
    else throw "nixus: unknown marker ${v.__nixus}";

  config = decode input.known;

  # --- module application, as nixpkgs' applyModuleArgs does -------------------------------
  moduleArgs = prefix: name:
    {
      config = realLib.attrByPath prefix (throw "nixus: value not known yet") config;
      options = throw "nixus: the `options` argument is not available to fleet.nix modules";
      inherit lib;
      nodes = config.nodes or (throw "nixus: nodes not known yet");
      _prefix = prefix;
    }
    // (if name == null then { } else { inherit name; });

  applyArgs = args: f:
    let
      extra = mapAttrs (n: _: args.${n} or config._module.args.${n}) (functionArgs f);
    in
    f (args // extra);

  # A module as a tree node: functions applied, `imports` of .nix paths followed.
  rawModule = args: file: m:
    let
      value = if isFunction m then applyArgs args m else m;
      file' = if value ? _file then toString value._file else file;
      importsOf = v: (v.imports or [ ]) ++ (v.require or [ ]);
      expand = i:
        if isPath i || (isString i && builtins.substring 0 1 i == "/") then
          (if realLib.hasSuffix ".nix" (toString i) then rawModule args (toString i) (import i) else i)
        else if isFunction i || isAttrs i then rawModule args file' i
        else i;
    in
    {
      __nixusModule = true;
      file = file';
      key = if isPath m then toString m else null;
      value =
        if isAttrs value && (value ? imports || value ? require) then
          (removeAttrs value [ "require" ]) // { imports = map expand (importsOf value); }
        else value;
    };

  topFiles = map (f: rawModule (moduleArgs [ ] null) f (import (/. + f))) input.files;

  applications = map (
    r:
    if r.kind == "module" then
      rawModule (moduleArgs r.prefix r.name) "<nix function>" (resolve r.ref)
    else
      (resolve r.ref) (decode r.arg)
  ) input.requests;

  raw = {
    files = topFiles;
    apps = applications;
  };

  resolve = ref: foldl' (acc: n: if isList acc then elemAt acc n else acc.${n}) raw ref;

  # --- serialization -------------------------------------------------------------------
  pending = { __nixus = "pending"; };
  posOf = x: n:
    let p = unsafeGetAttrPos n x;
    in if p == null then null else [ p.file p.line ];

  ser = path: v:
    let r = tryEval v;
    in if !r.success then pending else serValue path r.value;

  serValue = path: x:
    if isFunction x then { __nixus = "ref"; ref = path; }
    else if isPath x then { __nixus = "path"; path = toString x; }
    else if isList x then genList (i: ser (path ++ [ i ]) (elemAt x i)) (length x)
    else if isAttrs x then serAttrs path x
    else if typeOf x == "float" then { __nixus = "float"; value = x; }
    else x;

  serAttrs = path: x:
    if x ? __nixusModule then
      {
        __nixus = "module";
        inherit (x) file key;
        value = ser (path ++ [ "value" ]) x.value;
      }
    else if (tryEval (x.type or null == "derivation")).value or false then
      { __nixus = "ref"; ref = path; derivation = true; name = x.name or "derivation"; }
    else if x ? _type && isString x._type then
      { __nixus = x._type; } // mapAttrs (n: v: ser (path ++ [ n ]) v) (removeAttrs x [ "_type" ])
      // (if x._type == "option" then { __pos = listToAttrs (map (n: { name = n; value = posOf x n; }) [ "type" ]); } else { })
    else
      mapAttrs (n: v: ser (path ++ [ n ]) v) x
      // { __pos = listToAttrs (map (n: { name = n; value = posOf x n; }) (attrNames x)); };
in
{
  files = genList (i: ser [ "files" i ] (elemAt topFiles i)) (length topFiles);
  apps = genList (i: ser [ "apps" i ] (elemAt applications i)) (length applications);
}
