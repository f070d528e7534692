#!/usr/bin/env bash
# Adopts Cutover as a user's app would (run by .ci/run after the tests; `npm run test:example`):
# packs the package (prepack builds dist/), copies examples/ to a fresh temporary folder outside
# the repository, installs the tarball there with npm, type-checks the app under its strict
# tsconfig (skipLibCheck off), synthesizes it offline, checks the template, and runs the installed
# CLI. Nothing of the repository's node_modules is visible to the app.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
started=$SECONDS
work="$(mktemp -d "${TMPDIR:-/tmp}/cutover-example-XXXXXX")"
trap 'rm -rf "$work"' EXIT

step() { printf 'test-example: %s\n' "$*"; }

step "npm pack (builds dist/)"
(cd "$root" && npm pack --silent --pack-destination "$work" --json > "$work/pack.json")
tarball="$work/$(node -p 'require(process.argv[1])[0].filename' "$work/pack.json")"
node -e '
  const [pack] = require(process.argv[1]);
  const mib = (n) => (n / 1024 / 1024).toFixed(2) + " MiB";
  console.log(`test-example: ${pack.filename}: ${mib(pack.size)} packed, ${mib(pack.unpackedSize)} unpacked, ${pack.entryCount} files`);
' "$work/pack.json"

step "copy examples/ and npm install the tarball"
mkdir "$work/app"
(cd "$root/examples" && tar --exclude=node_modules --exclude=cdk.out -cf - .) | (cd "$work/app" && tar -xf -)
cd "$work/app"
npm install --no-audit --no-fund --prefer-offline --loglevel=error "$tarball"

# The user's synth must need neither a bundler nor the handlers' dependencies: neither is in the
# app's production tree (tsx, the app's own dev tool, brings esbuild; that is the app's choice).
prod_tree="$(npm ls --omit=dev --all --parseable)"
for absent in /esbuild /@aws-lambda-powertools/; do
  if grep -q -- "node_modules$absent" <<< "$prod_tree"; then echo "test-example: the app's production tree holds $absent" >&2; exit 1; fi
done
if [ -e node_modules/cutover/lambda ]; then echo 'test-example: the package ships TypeScript sources (lambda/)' >&2; exit 1; fi
# One aws-cdk-lib: Cutover's is the app's (a peer dependency), so the app's Durations are accepted.
if [ -e node_modules/cutover/node_modules/aws-cdk-lib ]; then echo 'test-example: cutover brought its own aws-cdk-lib' >&2; exit 1; fi

step "tsc --noEmit (strict, exactOptionalPropertyTypes, noUncheckedIndexedAccess)"
npx tsc --noEmit
# Again with skipLibCheck off: aws-cdk-lib's own declarations fail exactOptionalPropertyTypes, so
# only errors inside Cutover's count. One is allowed, by name: MigratedAlias extends aws-cdk-lib's
# QualifiedFunctionBase, whose accessors (`tenancyConfig: T | undefined`) do not satisfy IAlias's
# optional properties under that option; aws-cdk-lib's own Alias and Version fail the same way.
step "tsc --noEmit --skipLibCheck false: no error inside Cutover's declarations"
status=0
npx tsc --noEmit --skipLibCheck false > "$work/libcheck.txt" || status=$?
# 1 and 2 are "errors reported"; anything else is tsc itself failing.
if [ "$status" -gt 2 ]; then cat "$work/libcheck.txt" >&2; echo "test-example: tsc failed (exit $status)" >&2; exit 1; fi
if grep '^node_modules/cutover/' "$work/libcheck.txt" | grep -v "Class 'MigratedAlias' incorrectly implements interface 'IAlias'" | grep .; then
  echo "test-example: Cutover's declarations have the errors above under the example's strict tsconfig" >&2
  exit 1
fi

step "cdk synth, offline"
CDK_DEFAULT_ACCOUNT='' CDK_DEFAULT_REGION='' CDK_DISABLE_CLI_TELEMETRY=true \
  npx cdk synth --quiet --no-notices --no-version-reporting --output cdk.out > /dev/null
node "$root/scripts/check-example-template.js" cdk.out

step "npx cutover --version and --help from the installed package"
version="$(npx --no-install cutover --version)"
expected="$(node -p 'require("cutover/package.json").version')"
if [ "$version" != "$expected" ]; then echo "test-example: cutover --version printed '$version', expected '$expected'" >&2; exit 1; fi
npx --no-install cutover --help | grep rehearse > /dev/null || { echo 'test-example: cutover --help does not list rehearse' >&2; exit 1; }

step "ok in $((SECONDS - started)) s"
