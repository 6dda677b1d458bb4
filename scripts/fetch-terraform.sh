#!/usr/bin/env bash
# Builds the Terraform CLI the acceptance tests and `make docs` use, from the
# Go module proxy (MPL-2.0 release 1.5.7), into .cache/terraform/bin. About 4
# minutes on 2 cores the first time; a no-op afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

version=1.5.7
dir=.cache/terraform
bin=$dir/bin/terraform
# installed_version reads all of Terraform's output (sed, not grep -q or
# head): Terraform may print CLI-configuration warnings first, and a reader
# that stops early kills it with SIGPIPE under pipefail.
installed_version() {
  [[ -x $bin ]] || return 0
  "$bin" version 2>/dev/null | sed -n 's/^Terraform v\([0-9.]*\).*/\1/p'
}
if [[ $(installed_version) == "$version" ]]; then
  exit 0
fi
mkdir -p "$dir/bin"
echo "building Terraform $version into $dir/bin (a few minutes, once)"
GOBIN="$PWD/$dir/bin" go install "github.com/hashicorp/terraform@v$version"
got=$(installed_version)
if [[ $got != "$version" ]]; then
  echo "built $bin, but it reports version '$got', not $version" >&2
  exit 1
fi
echo "Terraform $got in $bin"
