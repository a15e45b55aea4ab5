# The example fleet of fleet.py, written as a Nixus user writes it.
{ config, lib, ... }:
{
  defaults = { name, ... }: {
    tags = lib.mkDefault [ "example" ];
    configuration = { networking.hostName = name; };
  };
  nodes = {
    gw = { host = "10.0.0.1"; tags = [ "edge" ]; };
    web1 = { host = "10.0.0.11"; tags = [ "web" ]; };
    web2 = {
      host = "10.0.0.12";
      tags = [ "web" ];
      configuration = { pkgs, ... }: {
        environment.etc.upstream.text = config.nodes.web1.host + ":80\n";
        services.nginx.package = pkgs.nginxMainline;
      };
    };
    ns1 = { host = "10.0.0.21"; tags = [ "dns" ]; };
    ns2 = { host = "10.0.0.22"; tags = [ "dns" ]; };
  };
}
