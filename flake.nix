{
  description = "Spectacles Gateway: a standalone Discord gateway daemon (shards to stdout, Redis Streams or AMQP)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: rec {
        spectacles-gateway = pkgs.buildNpmPackage {
          pname = "spectacles-gateway";
          version = (builtins.fromJSON (builtins.readFile ./package.json)).version;
          src = ./.;
          nodejs = pkgs.nodejs_24;

          # Dependencies come straight from package-lock.json (each entry has its own hash),
          # so there is no npmDepsHash to update when the lock file changes.
          npmDeps = pkgs.importNpmLock { npmRoot = ./.; };
          npmConfigHook = pkgs.importNpmLock.npmConfigHook;
          # The only install script is the `node` devDependency's (it brings a Node 24 into
          # node_modules for machines with an older one, fetched from the registry: no network in
          # the build sandbox). Without it npm scripts use nodejs_24 below; nothing else needs one.
          npmRebuildFlags = [ "--ignore-scripts" ];

          # `npm run build` (type-check, then bundle into dist/) is the default build step.
          nativeBuildInputs = [ pkgs.makeWrapper ];

          # Our own install: dist/ is git-ignored, so npm's packing would leave it out. The bundle
          # carries its dependencies: no node_modules at run time.
          installPhase = ''
            runHook preInstall
            mkdir -p $out/lib/spectacles-gateway $out/bin
            cp -r package.json dist $out/lib/spectacles-gateway/
            makeWrapper ${pkgs.nodejs_24}/bin/node $out/bin/spectacles-gateway \
              --add-flags "$out/lib/spectacles-gateway/dist/main.js"
            runHook postInstall
          '';

          meta = {
            description = "Standalone Discord gateway daemon";
            license = pkgs.lib.licenses.mit;
            mainProgram = "spectacles-gateway";
          };
        };
        default = spectacles-gateway;
      });
    };
}
