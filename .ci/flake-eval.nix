# Evaluates flake.nix's outputs without the network: nixpkgs cannot be fetched here, so a stand-in
# gives the few functions the flake calls. The stand-in importNpmLock does what the real one needs
# of package-lock.json: every fetched entry becomes fetchurl { url = resolved; hash = integrity; },
# which fails evaluation for an entry without either. Run by .ci/run:
#   nix-instantiate --eval --strict .ci/flake-eval.nix
let
  flake = import ../flake.nix;
  packageJson = builtins.fromJSON (builtins.readFile ../package.json);
  lock = builtins.fromJSON (builtins.readFile ../package-lock.json);

  genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);

  fetchurl = { url, hash }:
    if builtins.match "https://registry\\.npmjs\\.org/.+\\.tgz" url == null
    then throw "flake check: ${url} is not a public npm registry tarball"
    else if builtins.match "sha(256|384|512)-.+" hash == null
    then throw "flake check: ${url} has no usable integrity (${hash})"
    else { inherit url hash; };

  fetchEntry = key: entry:
    if key == "" || (entry.link or false) then null
    else if !(entry ? resolved) then throw "flake check: package-lock.json entry ${key} has no resolved URL"
    else if !(entry ? integrity) then throw "flake check: package-lock.json entry ${key} has no integrity"
    else fetchurl { url = entry.resolved; hash = entry.integrity; };

  importNpmLock = {
    __functor = _: { npmRoot }:
      assert builtins.pathExists (npmRoot + "/package-lock.json");
      builtins.mapAttrs fetchEntry lock.packages;
    npmConfigHook = "npmConfigHook";
  };

  pkgsFor = system: {
    inherit importNpmLock;
    lib = { inherit genAttrs; licenses.mit = "MIT"; };
    nodejs_24 = "/nix/store/stand-in-nodejs-24";
    makeWrapper = "makeWrapper";
    # The derivation's arguments, to check what the flake passes.
    buildNpmPackage = args: args // { inherit system; };
  };

  nixpkgs = {
    lib = { inherit genAttrs; };
    legacyPackages = genAttrs [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ] pkgsFor;
  };

  outputs = flake.outputs { self = outputs; inherit nixpkgs; };

  checkSystem = system:
    let
      pkg = outputs.packages.${system}.default;
      fetched = builtins.filter (x: x != null) (builtins.attrValues pkg.npmDeps);
    in
    assert pkg.pname == packageJson.name;
    assert pkg.version == packageJson.version;
    assert pkg.meta.mainProgram == "spectacles-gateway";
    assert builtins.isString pkg.installPhase;
    # The `node` devDependency's preinstall needs the network, which the Nix sandbox has not.
    assert builtins.elem "--ignore-scripts" (pkg.npmRebuildFlags or [ ]);
    assert builtins.length fetched == builtins.length (builtins.attrNames lock.packages) - 1;
    { inherit system; packages = builtins.length fetched; };
in
{
  description = flake.description;
  systems = map checkSystem (builtins.attrNames outputs.packages);
}
