# The few packages the testbed OS offers: built with /bin/sh, no nixpkgs needed.
{ system }:
let
  sh = name: script: derivation {
    inherit name system;
    builder = "/bin/sh";
    args = [ "-c" script ];
    PATH = "/usr/bin:/bin";
  };
in
{
  inherit system;
  writeText = name: text: derivation {
    inherit name system text;
    builder = "/bin/sh";
    args = [ "-c" "printf '%s' \"$text\" > $out" ];
    PATH = "/usr/bin:/bin";
  };
  hello = sh "hello-testbed" "mkdir -p $out/bin && printf '#!/bin/sh\\necho Hello, world!\\n' > $out/bin/hello && chmod +x $out/bin/hello";
}
