{
  description = "nixus: a NixOS fleet deployer (fleet-wide module evaluation, cross-host modules, confirm-or-rollback deploys)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAll (pkgs: rec {
        nixus = pkgs.python3Packages.buildPythonApplication {
          pname = "nixus";
          version = "0.1.0";
          pyproject = true;
          src = ./.;
          build-system = [ pkgs.python3Packages.setuptools ];
          dependencies = with pkgs.python3Packages; [ pydantic asyncssh networkx typer rich ];
          nativeCheckInputs = with pkgs.python3Packages; [ pytestCheckHook hypothesis pytest-asyncio ];
          # The evaluator finds the real module system through this setting.
          makeWrapperArgs = [ "--set-default" "NIXUS_NIXPKGS_LIB" "${nixpkgs}/lib" "--prefix" "PATH" ":" "${pkgs.nix}/bin" ];
          doCheck = false;
        };
        default = nixus;
      });

      apps = forAll (pkgs: rec {
        nixus = { type = "app"; program = "${self.packages.${pkgs.system}.nixus}/bin/nixus"; };
        default = nixus;
      });

      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          packages = [
            (pkgs.python3.withPackages (ps: with ps; [ pydantic asyncssh networkx typer rich pytest hypothesis pytest-asyncio ]))
            pkgs.nix pkgs.openssh pkgs.wireguard-tools pkgs.wireguard-go pkgs.nsd pkgs.iproute2
          ];
          NIXUS_NIXPKGS_LIB = "${nixpkgs}/lib";
        };
      });
    };
}
