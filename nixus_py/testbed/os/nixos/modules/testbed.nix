# The testbed OS: the NixOS options that nixus's modules and examples use, declared with NixOS's
# names and types, and a `system.build.toplevel` built without nixpkgs whose
# `bin/switch-to-configuration` applies the configuration to a nixus test host.
# Setting an option declared neither here nor by the user's modules is the module system's
# usual "option does not exist" error, as on NixOS.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  list = t: mkOption { type = types.listOf t; default = [ ]; };
  nullable = t: mkOption { type = types.nullOr t; default = null; };
  bool = default: mkOption { type = types.bool; inherit default; };

  userOptions = { name, config, ... }: {
    options = {
      name = mkOption { type = types.str; default = name; };
      isNormalUser = bool false;
      isSystemUser = bool false;
      uid = nullable types.int;
      group = mkOption { type = types.str; default = if config.isNormalUser then "users" else "nogroup"; };
      extraGroups = list types.str;
      description = mkOption { type = types.str; default = ""; };
      home = mkOption { type = types.str; default = if config.isNormalUser then "/home/${name}" else "/var/empty"; };
      createHome = bool config.isNormalUser;
      shell = mkOption { type = types.str; default = "/bin/sh"; };
      openssh.authorizedKeys.keys = list types.singleLineStr;
      openssh.authorizedKeys.keyFiles = list types.path;
    };
  };

  peerOptions = {
    options = {
      publicKey = mkOption { type = types.singleLineStr; };
      allowedIPs = list types.str;
      endpoint = nullable types.str;
      persistentKeepalive = nullable types.int;
      presharedKeyFile = nullable types.str;
    };
  };

  # A WireGuard interface as networking.wireguard (`ips`) and networking.wg-quick (`address`,
  # and scripts) declare it.
  interfaceOptions = addresses: extra: {
    options = {
      ${addresses} = list types.str;
      listenPort = nullable types.port;
      privateKeyFile = nullable types.str;
      privateKey = nullable types.str;
      peers = list (types.submodule peerOptions);
    } // extra;
  };

  # As NixOS's wg-quick module has them: a script is lines, or a list of them.
  script = mkOption { type = types.coercedTo (types.listOf types.str) (lib.concatStringsSep "\n") types.lines; default = ""; };
  scripts = [ "preUp" "postUp" "preDown" "postDown" ];

  zoneOptions = {
    options = {
      data = mkOption { type = types.lines; default = ""; };
      notify = list types.str;
      provideXFR = list (types.nullOr types.str);
      requestXFR = list types.str;
      allowNotify = list types.str;
    };
  };

  etcOptions = { name, ... }: {
    options = {
      enable = bool true;
      target = mkOption { type = types.str; default = name; };
      text = nullable types.lines;
      source = nullable types.path;
      mode = mkOption { type = types.str; default = "0444"; };
    };
  };

  serviceOptions = { name, ... }: {
    options = {
      enable = bool true;
      description = mkOption { type = types.str; default = ""; };
      script = mkOption { type = types.lines; default = ""; };
      environment = mkOption { type = types.attrsOf types.str; default = { }; };
      wantedBy = list types.str;
      restartTriggers = list types.unspecified;
      serviceConfig = mkOption {
        type = types.submodule {
          freeformType = types.attrsOf types.unspecified;
          options.ExecStart = nullable types.str;
          options.Type = mkOption { type = types.enum [ "simple" "oneshot" "exec" ]; default = "simple"; };
        };
        default = { };
      };
    };
  };

  cfg = config;

  # An interface of either kind, for switch-to-configuration: its addresses as `ips`.
  interfaceSettings = addresses: extra: i: {
    ips = i.${addresses};
    inherit (i) listenPort privateKeyFile privateKey;
    peers = map (p: { inherit (p) publicKey allowedIPs endpoint persistentKeepalive presharedKeyFile; }) i.peers;
  } // lib.getAttrs extra i;

  # What switch-to-configuration needs, as data (paths become store paths).
  settings = {
    hostName = cfg.networking.hostName;
    hosts = cfg.networking.hosts;
    users = lib.mapAttrs (_: u: {
      inherit (u) name uid group home shell isNormalUser isSystemUser extraGroups;
      keys = u.openssh.authorizedKeys.keys
        ++ lib.concatMap (f: lib.splitString "\n" (builtins.readFile f)) u.openssh.authorizedKeys.keyFiles;
    }) cfg.users.users;
    groups = lib.mapAttrs (_: g: { inherit (g) name gid members; }) cfg.users.groups;
    ssh = {
      inherit (cfg.services.openssh) enable ports extraConfig;
      settings = lib.filterAttrs (_: v: v != null) cfg.services.openssh.settings;
    };
    knownHosts = lib.mapAttrsToList (name: h: {
      hostNames = h.hostNames ++ h.extraHostNames;
      publicKey = if h.publicKey != null then h.publicKey else lib.removeSuffix "\n" (builtins.readFile h.publicKeyFile);
    }) cfg.programs.ssh.knownHosts;
    firewall = {
      inherit (cfg.networking.firewall) enable allowedTCPPorts allowedUDPPorts trustedInterfaces allowPing;
      sshPorts = lib.optionals (cfg.services.openssh.enable && cfg.services.openssh.openFirewall) cfg.services.openssh.ports;
    };
    wireguard = lib.mapAttrs (_: interfaceSettings "ips" [ ]) cfg.networking.wireguard.interfaces;
    wgQuick = lib.mapAttrs (_: interfaceSettings "address" scripts) cfg.networking.wg-quick.interfaces;
    sysctl = lib.filterAttrs (_: v: v != null) cfg.boot.kernel.sysctl;
    nat = { inherit (cfg.networking.nat) enable internalInterfaces externalInterface; };
    nsd = {
      inherit (cfg.services.nsd) enable interfaces port;
      zones = lib.mapAttrs (_: z: { inherit (z) data notify provideXFR requestXFR allowNotify; }) cfg.services.nsd.zones;
    };
    etc = lib.mapAttrsToList (_: e: {
      inherit (e) target mode;
      text = e.text;
      source = if e.source == null then null else "${e.source}";
    }) (lib.filterAttrs (_: e: e.enable) cfg.environment.etc);
    services = lib.mapAttrs (name: s: {
      inherit (s) script environment;
      execStart = s.serviceConfig.ExecStart;
      type = s.serviceConfig.Type;
      # A service restarts when anything about it (or its triggers) changes.
      hash = builtins.hashString "sha256" (builtins.toJSON [ s.script s.environment s.serviceConfig.ExecStart
        (map toString s.restartTriggers) ]);
    }) (lib.filterAttrs (_: s: s.enable) cfg.systemd.services);
  };
in
{
  options = {
    nixpkgs.system = mkOption { type = types.str; description = "The platform the system is built for."; };
    system.stateVersion = mkOption { type = types.str; default = "25.11"; };
    system.build = mkOption {
      type = types.submoduleWith {
        modules = [ {
          freeformType = types.lazyAttrsOf types.unspecified;
          options.toplevel = mkOption { type = types.package; readOnly = true; };
        } ];
      };
      default = { };
    };

    networking.hostName = mkOption {
      type = types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$";
      default = "nixos";
    };
    networking.hosts = mkOption { type = types.attrsOf (types.listOf types.str); default = { }; };
    networking.firewall = {
      enable = bool true;
      allowPing = bool true;
      allowedTCPPorts = list types.port;
      allowedUDPPorts = list types.port;
      trustedInterfaces = list types.str;
    };
    networking.nat = {
      enable = bool false;
      internalInterfaces = list types.str;
      externalInterface = nullable types.str;
    };
    networking.wireguard.interfaces = mkOption {
      type = types.attrsOf (types.submodule (interfaceOptions "ips" { }));
      default = { };
    };
    networking.wg-quick.interfaces = mkOption {
      type = types.attrsOf (types.submodule (interfaceOptions "address" (lib.genAttrs scripts (_: script))));
      default = { };
    };
    boot.kernel.sysctl = mkOption {
      type = types.attrsOf (types.nullOr (types.oneOf [ types.bool types.str types.int ]));
      default = { };
    };

    users.mutableUsers = bool true;
    users.users = mkOption { type = types.attrsOf (types.submodule userOptions); default = { }; };
    users.groups = mkOption {
      type = types.attrsOf (types.submodule ({ name, ... }: {
        options.name = mkOption { type = types.str; default = name; };
        options.gid = nullable types.int;
        options.members = list types.str;
      }));
      default = { };
    };

    services.openssh = {
      enable = bool false;
      openFirewall = bool true;
      ports = mkOption { type = types.listOf types.port; default = [ 22 ]; };
      settings = mkOption {
        type = types.submodule {
          freeformType = types.attrsOf (types.nullOr (types.oneOf [ types.bool types.int types.str (types.listOf types.str) ]));
          options.PermitRootLogin = mkOption {
            type = types.enum [ "yes" "without-password" "prohibit-password" "forced-commands-only" "no" ];
            default = "prohibit-password";
          };
          options.PasswordAuthentication = mkOption { type = types.nullOr types.bool; default = true; };
        };
        default = { };
      };
      extraConfig = mkOption { type = types.lines; default = ""; };
    };
    programs.ssh.knownHosts = mkOption {
      type = types.attrsOf (types.submodule ({ name, ... }: {
        options.hostNames = list types.str;
        options.extraHostNames = list types.str;
        options.publicKey = nullable types.str;
        options.publicKeyFile = nullable types.path;
        options.certAuthority = bool false;
      }));
      default = { };
    };

    services.nsd = {
      enable = bool false;
      interfaces = mkOption { type = types.listOf types.str; default = [ "127.0.0.0" "::1" ]; };
      port = mkOption { type = types.port; default = 53; };
      zones = mkOption { type = types.attrsOf (types.submodule zoneOptions); default = { }; };
    };

    environment.etc = mkOption { type = types.attrsOf (types.submodule etcOptions); default = { }; };
    systemd.services = mkOption { type = types.attrsOf (types.submodule serviceOptions); default = { }; };
  };

  # As NixOS's nat module does: a NAT host forwards.
  config.boot.kernel.sysctl = lib.mkIf cfg.networking.nat.enable {
    "net.ipv4.conf.all.forwarding" = lib.mkOverride 99 true;
    "net.ipv4.conf.default.forwarding" = lib.mkOverride 99 true;
  };

  config.system.build.toplevel = derivation {
    name = "testbed-system-${if cfg.networking.hostName == "" then "unnamed" else cfg.networking.hostName}";
    system = cfg.nixpkgs.system;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    settings = builtins.toJSON settings;
    activate = ../activate.py;
    passAsFile = [ "settings" ];
    args = [ "-c" ''
      set -e
      mkdir -p $out/bin
      cp "$settingsPath" $out/settings.json
      cp "$activate" $out/activate.py
      printf '#!/bin/sh\nexec /usr/bin/python3 %s/activate.py "$@"\n' "$out" > $out/bin/switch-to-configuration
      chmod +x $out/bin/switch-to-configuration
      echo testbed > $out/nixos-version
    '' ];
  };
}
