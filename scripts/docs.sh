#!/usr/bin/env bash
# Generate the provider's documentation with tfplugindocs, offline:
#
#   scripts/docs.sh           write docs/index.md and docs/resources/*.md
#   scripts/docs.sh --check   regenerate into a temporary copy of docs/, fail if
#                             it differs from docs/, then run tfplugindocs
#                             validate on docs/ (make docs-check)
#
# Sources: the provider's schema, examples/provider/provider.tf,
# examples/resources/<type>/{resource*.tf,import.sh} and templates/*.tmpl.
#
# The schema comes from the provider built here and a Terraform CLI whose
# dev_overrides point at it, so nothing is downloaded apart from tfplugindocs
# itself on first use (`go install`, into .cache/bin). tfplugindocs is given
# the schema file, so it neither builds the provider nor fetches Terraform.
# Only the files tfplugindocs manages are replaced (index.md and the resources/,
# data-sources/, guides/... directories); hand-written files such as
# docs/benchmarks.md are left alone.
#
# Needs: go, and Terraform >= 1.0 as $TERRAFORM, .cache/terraform/bin/terraform
# or on PATH.
set -euo pipefail

TFPLUGINDOCS_VERSION=v0.25.0
PROVIDER_NAME=minibroker
PROVIDER_SOURCE=minibroker/minibroker
PROVIDER_ADDRESS=registry.terraform.io/minibroker/minibroker

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *) echo "usage: scripts/docs.sh [--check]" >&2; exit 2 ;;
esac

say() { echo "docs: $*" >&2; }
die() { echo "docs: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "'go' not found on PATH"

# Terraform: only its `providers schema -json` is used.
terraform="${TERRAFORM:-}"
if [[ -z "$terraform" ]]; then
  if [[ -x "$repo/.cache/terraform/bin/terraform" ]]; then
    terraform="$repo/.cache/terraform/bin/terraform"
  elif command -v terraform >/dev/null 2>&1; then
    terraform="$(command -v terraform)"
  else
    die "Terraform not found: set TERRAFORM, or put it at .cache/terraform/bin/terraform or on PATH"
  fi
fi

# tfplugindocs, pinned: a different version renders differently and would make
# docs-check fail for no change of ours.
tfplugindocs="$repo/.cache/bin/tfplugindocs"
if [[ ! -x "$tfplugindocs" ]] || ! go version -m "$tfplugindocs" 2>/dev/null |
    grep "terraform-plugin-docs[[:space:]]*${TFPLUGINDOCS_VERSION}[[:space:]]" >/dev/null; then
  say "installing tfplugindocs $TFPLUGINDOCS_VERSION into .cache/bin"
  # `go install pkg@version` ignores the repository's go.mod.
  (cd "$repo" && GOBIN="$repo/.cache/bin" GOFLAGS="" go install \
    "github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs@$TFPLUGINDOCS_VERSION")
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/minibroker-docs.XXXXXX")"
trap 'rm -rf "$work"' EXIT

say "building the provider"
mkdir -p "$work/plugins"
(cd "$repo" && go build -o "$work/plugins/terraform-provider-$PROVIDER_NAME" .)

say "reading its schema with $terraform"
cat >"$work/terraformrc" <<EOF
provider_installation {
  dev_overrides {
    "$PROVIDER_SOURCE" = "$work/plugins"
  }
  direct {}
}
EOF
mkdir -p "$work/config"
cat >"$work/config/main.tf" <<EOF
terraform {
  required_providers {
    $PROVIDER_NAME = { source = "$PROVIDER_SOURCE" }
  }
}
EOF
# With dev_overrides no `terraform init` is needed, so nothing is fetched.
if ! (cd "$work/config" &&
      env -u TF_CLI_ARGS TF_CLI_CONFIG_FILE="$work/terraformrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 \
        "$terraform" providers schema -json >"$work/schema.raw.json" 2>"$work/terraform.log"); then
  cat "$work/terraform.log" >&2
  die "terraform providers schema failed"
fi

# tfplugindocs looks the schema up under the provider's short name (or
# registry.terraform.io/hashicorp/NAME); Terraform keys it by the full address.
key="\"$PROVIDER_ADDRESS\":"
n="$(grep -oF "$key" "$work/schema.raw.json" | wc -l)"
[[ "$n" == 1 ]] || die "expected the key $key once in the schema JSON, found it $n times"
sed "s#\"$PROVIDER_ADDRESS\":#\"$PROVIDER_NAME\":#" "$work/schema.raw.json" >"$work/schema.json"

# tfplugindocs renders into <provider-dir>/docs; give it a scratch provider
# directory holding copies of the sources, so that docs/ is only touched below.
mkdir -p "$work/src"
cp -R "$repo/examples" "$work/src/examples"
[[ -d "$repo/templates" ]] && cp -R "$repo/templates" "$work/src/templates"

say "rendering with tfplugindocs $TFPLUGINDOCS_VERSION"
if ! "$tfplugindocs" generate --provider-dir "$work/src" --provider-name "$PROVIDER_NAME" \
    --providers-schema "$work/schema.json" --website-temp-dir "$work/tfws" >"$work/tfplugindocs.log" 2>&1; then
  cat "$work/tfplugindocs.log" >&2
  die "tfplugindocs generate failed"
fi

# Files and directories tfplugindocs owns in a docs directory.
managed=(index.md data-sources guides resources functions ephemeral-resources actions list-resources state-stores)

# sync_docs OUT: replace the tfplugindocs-owned parts of OUT with the fresh ones.
sync_docs() {
  local out="$1" m
  mkdir -p "$out"
  for m in "${managed[@]}"; do rm -rf "${out:?}/$m"; done
  cp -R "$work/src/docs/." "$out/"
}

if ! $check; then
  sync_docs "$repo/docs"
  say "wrote docs/index.md and docs/resources/ ($(find "$work/src/docs" -type f | wc -l) files)"
  exit 0
fi

mkdir -p "$work/check"
[[ -d "$repo/docs" ]] && cp -R "$repo/docs/." "$work/check/"
sync_docs "$work/check"
if ! diff -ru "$repo/docs" "$work/check" >"$work/diff" 2>&1; then
  sed "s#$work/check#docs (regenerated)#g; s#$repo/##g" "$work/diff" >&2
  echo >&2
  die "docs/ is out of date with the provider's schema, examples/ or templates/: run 'make docs' and commit docs/"
fi
# tfplugindocs' own checks: front matter, file names, a page per resource.
if ! "$tfplugindocs" validate --provider-dir "$repo" --provider-name "$PROVIDER_NAME" \
    --providers-schema "$work/schema.json" >"$work/validate.log" 2>&1; then
  grep -v '\[DEBUG\]' "$work/validate.log" >&2
  die "tfplugindocs validate failed"
fi
say "docs/ is up to date"
