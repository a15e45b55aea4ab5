# One round of evaluating fleet.nix modules for nixus.
#
# Input (JSON, read from `inputFile` only once nixpkgs lib and the `preload` files are loaded, so
# that nixus can start this Nix while it still works on the last round): the module files, what
# nixus already knows of `config` (unknown values are marked pending and become `throw`s here),
# and the Nix functions nixus needs applied (submodule functions with their `name`, `config` and
# special arguments, `apply`/`coerce` functions with an argument, values serialized only on demand).
# Output: the values nixus asks for (`want`: new modules and application results, and values that
# came out pending before), as plain data. Each is named by its path in this structure; Nix
# evaluates everything again each round but serializes only these. Values that need an unknown
# part of `config` come out as `{ __nixus = "pending"; ref = <their path>; }` (caught with
# tryEval); functions, paths and derivations come out as references into this same structure, so
# the next round can get them back without Python ever evaluating them.
#
# `forBuild`: the same structure, evaluated with the input of a fleet's last round, as the NixOS
# modules that nixus rendered from it read it at build time: the result is `resolve`, which gives
# the value at a path (a node's `configuration` function, say).
{ libPath, inputFile, preload ? "[]", forBuild ? false }:
let
  inherit (builtins)
    isAttrs isList isFunction isPath isString attrNames mapAttrs functionArgs
    tryEval elemAt length genList unsafeGetAttrPos hasAttr foldl' typeOf;

  realLib = import libPath;
  lib = import ./lib.nix { lib = realLib; inherit seesUnknown; };
  input = builtins.fromJSON (builtins.readFile inputFile);

  # --- known config, from nixus ---------------------------------------------------------
  # The one `throw` for what is not known yet: nixus recognizes its message (nixfile.NOT_KNOWN).
  notKnown =
    if forBuild then throw ("nixus: a part of the fleet's config that this NixOS module reads was not "
      + "known when nixus rendered the node (a configuration or a value nixus cannot pass on)")
    else throw "nixus: value not known yet";

  # A value that caught `notKnown` with `tryEval` may change once more config is known, so nixus
  # must not keep it from an earlier round: this trace (nixfile.SEES_UNKNOWN) tells it so.
  seesUnknown = if forBuild then (v: v) else builtins.trace "nixus: tryEval may see unknown config";
  # (A module file that mentions it, found without lib.hasInfix: its regex overflows the stack on
  # a large file.)
  mayTryEval = file: v:
    let
      inDir = "${toString file}/default.nix";
      text = builtins.readFile (if builtins.pathExists inDir then inDir else file);
    in
    if builtins.replaceStrings [ "tryEval" ] [ "" ] text != text then seesUnknown v else v;

  decode = v:
    if isList v then map decode v
    else if isAttrs v then
      (if v ? __nixus then decodeSpecial v else mapAttrs (_: decode) v)
    else v;
  decodeSpecial = v:
    if v.__nixus == "pending" then notKnown
    else if v.__nixus == "path" then /. + v.path
    else if v.__nixus == "ref" then resolve v.ref
    else if v.__nixus == "deferred" then { imports = map decode v.modules; }
    else if v.__nixus == "configuration" then configurationAt v.path
    else if v.__nixus == "nixos-only" then
      throw ("nixus: `${realLib.concatStringsSep "." v.path}' is for NixOS to evaluate: of a node's "
        + "configuration, nixus reads only networking.public and secrets.files before NixOS does")
    else if v.__nixus == "attrs" then mapAttrs (_: decode) v.value
    else throw "nixus: unknown marker ${v.__nixus}";

  config = decode input.known;

  # --- module application, as nixpkgs' applyModuleArgs does -------------------------------
  # Errors of their own (unlike notKnown): nixus reports them when a value it needs fails with them.
  unavailable = what: throw "nixus: ${what} is not available to fleet.nix modules";

  # The `options` argument: what nixus sent of the option tree of the evaluation at `prefix`.
  # Where it sent none yet, this trace (nixfile.OPTIONS_WANTED) asks for it in the next round.
  optionsAt = prefix:
    let key = builtins.toJSON prefix; in
    if (input.options or { }) ? ${key} then withValues (decode input.options.${key})
    else if forBuild then notKnown
    else builtins.trace "nixus: options wanted ${key}" notKnown;
  # A node's configuration, as far as nixus reads it before NixOS does; asked for as `options` are.
  configurationAt = path:
    let key = builtins.toJSON path; in
    if (input.configurations or { }) ? ${key} then decode input.configurations.${key}
    else if forBuild then notKnown
    else builtins.trace "nixus: configuration wanted ${key}" notKnown;
  withValues = mapAttrs (_: o:
    if o._type or null == "option" then
      # What nixus does not send fails as a `throw`, which the driver's tryEval catches (a missing
      # attribute would end the round); nixus reports it if the value is really needed.
      genAttrs' optionParts (n: unavailable "`${n}' of an option in the `options' argument")
      // o // {
        value = realLib.attrByPath o.loc notKnown config;
        type = genAttrs' typeParts (n: unavailable "`type.${n}' of an option in the `options' argument")
          // o.type;
      }
    else withValues o);
  genAttrs' = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
  optionParts = [ "definitions" "definitionsWithLocations" "highestPrio" "example" "defaultText" "apply" ];
  typeParts = [ "check" "merge" "getSubOptions" "getSubModules" "substSubModules" "nestedTypes" "functor"
    "emptyValue" "descriptionClass" "typeMerge" "deprecationMessage" ];

  moduleArgs = prefix: name:
    {
      config = realLib.attrByPath prefix notKnown config;
      options = optionsAt prefix;
      inherit lib;
      nodes = config.nodes or notKnown;
      _prefix = prefix;
    }
    // (if name == null then { } else { inherit name; });

  # Other arguments come from the module's own `_module.args`; once nixus lists its names they are
  # all known, so a missing one is the user's error (worded as nixpkgs does).
  applyArgs = args: file: f:
    let
      fromConfig = n:
        ((args.config._module or { }).args or notKnown).${n}
          or (throw "while evaluating the module argument `${n}' in \"${file}\": attribute '${n}' missing");
    in
    f (args // mapAttrs (n: _: args.${n} or (fromConfig n)) (functionArgs f));

  # A module as a tree node: functions applied, `imports` of Nix files followed. A module read
  # from a file has that file as its key, as in nixpkgs, so that `disabledModules` can name it.
  # Paths to `.py` modules stay paths: nixus loads those itself; `disabledModules` paths become
  # the strings that nixus compares keys with.
  isFile = m: isPath m || (isString m && builtins.substring 0 1 m == "/");
  isNixFile = m: isFile m && !realLib.hasSuffix ".py" (toString m);
  rawModule = rawModuleWith false;
  # `lenient`: for a partial evaluation (what nixus reads of a node's NixOS configuration), an
  # import it cannot resolve (one that needs `modulesPath`, say) is left out instead.
  rawModuleWith = lenient: args: file: m:
    let
      fromFile = isNixFile m;
      imported = if fromFile then mayTryEval m (import m) else m;
      origin = if fromFile then toString m else file;
      value = if isFunction imported then applyArgs args origin imported else imported;
      # (A module whose shape depends on config stays pending below; its file is still known.)
      file' = let f = tryEval (value._file or origin); in if f.success then toString f.value else origin;
      imports = (value.imports or [ ]) ++ (value.require or [ ]);
      expand = i: if isNixFile i || isFunction i || isAttrs i then rawModuleWith lenient args file' i else i;
      resolvable = builtins.filter (i: (tryEval i).success) (if (tryEval imports).success then imports else [ ]);
    in
    {
      __nixusModule = true;
      file = file';
      key = if fromFile then toString m else null;
      value =
        if !isAttrs value then value
        # Imports that need config (nixpkgs: infinite recursion) leave the whole module unknown.
        else if !lenient && !(tryEval imports).success then notKnown
        else
          (removeAttrs value [ "require" "imports" ])
          // (let kept = if lenient then resolvable else imports; in
            realLib.optionalAttrs (kept != [ ]) { imports = map expand kept; })
          // realLib.optionalAttrs (value ? disabledModules) {
            disabledModules = map (d: if isPath d then toString d else d) value.disabledModules;
          };
    };

  # A fleet file may also be a list of modules: they are its imports.
  topModule = f:
    let path = /. + f; value = import path; in
    if isList value then mayTryEval path { _file = f; imports = value; } else path;
  topFiles = map (f: rawModule (moduleArgs [ ] null) f (topModule f)) input.files;

  applications = map (
    r:
    if r.kind == "module" || r.kind == "file" then
      let args = moduleArgs r.prefix r.name // mapAttrs (_: resolve) r.specialArgs;
      in if r.kind == "module" then rawModuleWith r.lenient args "<nix function>" (resolve r.ref)
      else rawModuleWith r.lenient args r.path (/. + r.path)
    else if r.kind == "value" then
      resolve r.ref
    else
      (resolve r.ref) (decode r.arg)
  ) input.requests;

  raw = {
    files = topFiles;
    apps = applications;
  };

  resolve = ref: foldl' (acc: n: if isList acc then elemAt acc n else acc.${n}) raw ref;

  # --- serialization -------------------------------------------------------------------
  pending = ref: { __nixus = "pending"; inherit ref; };
  isFalse = v: (tryEval v) == { success = true; value = false; };
  # Where each attribute of `x` was defined, in attrNames order: a line of `file` (the module's),
  # else [ file line ], or null where Nix knows none. Most attributes are in the module's own file:
  # naming it once per module rather than once per attribute saves a third of a round's work.
  linesOf = file: x:
    map (n: let p = unsafeGetAttrPos n x; in
      if p == null then null else if p.file == file then p.line else [ p.file p.line ]) (attrNames x);

  # `file`: the module whose value this is (null outside of one).
  ser = file: path: v:
    let r = tryEval v;
    in if !r.success then pending path else serValue file path r.value;

  serValue = file: path: x:
    if isFunction x then { __nixus = "ref"; ref = path; }
    else if isPath x then { __nixus = "path"; path = toString x; }
    else if isList x then genList (i: ser file (path ++ [ i ]) (elemAt x i)) (length x)
    else if isAttrs x then serAttrs file path x
    else if typeOf x == "float" then { __nixus = "float"; value = x; }
    else x;

  serAttrs = file: path: x:
    if x ? __nixusModule then
      {
        __nixus = "module";
        inherit (x) file key;
        value = ser x.file (path ++ [ "value" ]) x.value;
      }
    else if (tryEval (x.type or null == "derivation")).value or false then
      { __nixus = "ref"; ref = path; what = "derivation"; }
    else if x._type or null == "nixus-opaque" then
      { __nixus = "ref"; ref = path ++ [ "value" ]; what = "value"; }
    else if x._type or null == "if" && isFalse x.condition then
      # Serialized only if nixus needs it (as nixpkgs forces it only where it defines options):
      # in `mkIf (x != null) x.name` it may fail in a way that tryEval does not catch.
      {
        __nixus = "if";
        condition = false;
        content = { __nixus = "later"; ref = path ++ [ "content" ]; };
      }
    else if x ? _type && builtins.elem x._type moduleSystemTypes then
      { __nixus = x._type; } // mapAttrs (n: v: ser file (path ++ [ n ]) v) (removeAttrs x [ "_type" ])
    else if x ? __nixus || x ? __lines then
      # A set of the fleet's own with a name of nixus's markers: wrapped, so that it stays data.
      { __nixus = "attrs"; value = mapAttrs (n: v: ser file (path ++ [ n ]) v) x; lines = linesOf file x; }
    else
      mapAttrs (n: v: ser file (path ++ [ n ]) v) x // { __lines = linesOf file x; };
  # The `_type`s that mean something to the module system (nixpkgs lib's and nixus's lib.nix);
  # any other `_type` is an attribute like the rest (nixus's own markers are not for data to name).
  moduleSystemTypes = [ "if" "merge" "override" "order" "option" "nixus-type" "nixus-rename" ];

  # What a round needs before its input: loaded while nixus still works on the last round.
  loaded = foldl' (_: x: builtins.seq x null) null
    ([ lib realLib.attrByPath realLib.optionalAttrs ] ++ map (f: import (/. + f)) (builtins.fromJSON preload));
in
if forBuild then resolve else
builtins.seq loaded (
  # `diagnose`: evaluate one value that came out pending, without tryEval, for its error message.
  if input ? diagnose then
    builtins.seq (resolve input.diagnose) null
  else
    map (ref: ser null ref (resolve ref)) input.want
)
