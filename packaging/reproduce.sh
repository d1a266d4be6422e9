#!/bin/sh
# make reproduce: clone this commit twice into two temporary folders, run make release in each
# (the second with an empty Go build cache of its own, so that it compiles everything again
# instead of reusing the first build's objects), and compare the two SHA256SUMS byte for byte.
# Then check the artifacts of the first with the tools a person would use: dpkg-deb, tar,
# the binaries' own --version, sha256sum and a CycloneDX schema validator.
set -eu
cd "$(dirname "$0")/.."
export LC_ALL=C TZ=UTC
: "${GO:=go}"

REVISION=$(git rev-parse HEAD)
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "make reproduce: warning: uncommitted changes are not in the clones; this checks commit $REVISION" >&2
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/custos-reproduce.XXXXXX")
trap 'chmod -R u+w "$TMP" 2>/dev/null; rm -rf "$TMP"' EXIT

for c in first "second/elsewhere"; do
  git clone -q --no-local --no-checkout "$PWD" "$TMP/$c"
  git -C "$TMP/$c" checkout -q --detach "$REVISION"
done
echo "== make release in $TMP/first"
(cd "$TMP/first" && make -s release)
echo "== make release in $TMP/second/elsewhere, with an empty build cache"
(cd "$TMP/second/elsewhere" && GOCACHE="$TMP/gocache" make -s release)

if ! cmp -s "$TMP/first/dist/SHA256SUMS" "$TMP/second/elsewhere/dist/SHA256SUMS"; then
  echo "make reproduce: FAIL: the two builds differ:" >&2
  diff "$TMP/first/dist/SHA256SUMS" "$TMP/second/elsewhere/dist/SHA256SUMS" >&2 || true
  exit 1
fi
echo "== identical SHA256SUMS from two clones:"
cat "$TMP/first/dist/SHA256SUMS"

packaging/check-dist.sh "$TMP/first/dist" "$REVISION"
echo "make reproduce: PASS"
