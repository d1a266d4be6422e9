#!/bin/sh
# check-dist.sh DIST REVISION: checks the artifacts make release wrote, with outside tools.
set -eu
DIST=$1 REVISION=$2
export LC_ALL=C
fail() { echo "check-dist: FAIL: $*" >&2; exit 1; }
: "${GO:=go}"

(cd "$DIST" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not match the files"
DEB=$(ls "$DIST"/custos_*_amd64.deb)
TAR=$(ls "$DIST"/custos-*-linux-amd64.tar.xz)
VERIFY=$(ls "$DIST"/custos-verify-*-linux-amd64)
for f in "$DIST"/custos-*.cdx.json "$DIST"/custos-*-NOTICE.txt; do [ -s "$f" ] || fail "$f missing"; done

# The package: its control fields, and only root-owned files with one time.
info=$(dpkg-deb -I "$DEB")
echo "$info" | grep -q '^ Recommends: softhsm2, opensc$' || fail "Recommends is not softhsm2, opensc: $info"
echo "$info" | grep -q '^ Depends: .*libc6' || fail "Depends does not name libc6: $info"
if echo "$info" | grep '^ Depends:' | grep -q -E 'softhsm|opensc|golang|-dev'; then fail "Depends names more than runtime libraries: $info"; fi
list=$(dpkg-deb -c "$DEB")
for f in ./usr/bin/custos ./usr/share/applications/io.custos.app.desktop ./usr/share/doc/custos/NOTICE; do
  echo "$list" | grep -q " $f\$" || fail "$f is not in the package"
done
echo "$list" | grep -q ' ./usr/share/icons/hicolor/[0-9]*x[0-9]*/apps/io.custos.app.png$' || fail "the icon is not in the package"
if echo "$list" | awk '{print $2}' | grep -v '^root/root$' | grep -q .; then fail "files not owned by root/root"; fi
[ "$(echo "$list" | awk '{print $4, $5}' | sort -u | wc -l)" = 1 ] || fail "files of several times in the package"

# Unpacked, the binary names the commit it was built from.
X=$(mktemp -d); trap 'rm -rf "$X"' EXIT
dpkg-deb -x "$DEB" "$X/deb"
out=$("$X/deb/usr/bin/custos" --version) || fail "custos --version failed"
echo "$out" | grep -q "$(echo "$REVISION" | cut -c1-12)" || fail "custos --version does not name commit $REVISION: $out"
echo "unpacked custos --version: $out"

# The tarball holds the same binary.
mkdir "$X/tar" && tar -xJf "$TAR" -C "$X/tar"
cmp -s "$X/deb/usr/bin/custos" "$X"/tar/*/bin/custos || fail "the tarball's custos differs from the package's"

# custos-verify is static and names the commit too.
file "$VERIFY" | grep -q 'statically linked' || fail "$VERIFY is not statically linked: $(file "$VERIFY")"
$GO version -m "$VERIFY" | grep -q "vcs.revision=$REVISION" || fail "$VERIFY does not name commit $REVISION"

# The SBOMs are valid CycloneDX 1.5 (checked against the specification's own schema, from the
# cyclonedx-go module) and name the binary's hash.
SCHEMA=$($GO mod download -json github.com/CycloneDX/cyclonedx-go@v0.9.3 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')/schema
for sbom in "$DIST"/custos-*.cdx.json; do
  /usr/bin/python3 - "$SCHEMA" "$sbom" <<'EOF' || fail "$sbom is not valid CycloneDX 1.5"
import json, sys, jsonschema
schema_dir, path = sys.argv[1], sys.argv[2]
load = lambda n: json.load(open(f"{schema_dir}/{n}"))
bom = load("bom-1.5.schema.json")
# the module keeps the JSF schema the BOM schema refers to as jsf-0.82.schema.json under another name
store = {"http://cyclonedx.org/schema/" + ref: load(f) for ref, f in
         (("spdx.schema.json", "spdx.schema.json"), ("jsf-0.82.schema.json", "jsf-0.82.schemax.json"))}
resolver = jsonschema.RefResolver.from_schema(bom, store=store)
jsonschema.Draft7Validator(bom, resolver=resolver).validate(json.load(open(path)))
EOF
done
sum=$(sha256sum "$X/deb/usr/bin/custos" | cut -d' ' -f1)
grep -q "\"content\": \"$sum\"" "$DIST"/custos-[0-9]*.cdx.json || fail "the SBOM does not name the packaged binary's SHA-256"

# The notice says what of hashicorp/vault is linked.
grep -q 'Note on github.com/hashicorp/vault .*only github.com/hashicorp/vault/shamir is linked.*MPL-2.0.*BUSL-1.1' "$DIST"/custos-*-NOTICE.txt ||
  fail "the notice does not say that only vault's shamir (MPL-2.0) is linked"
echo "check-dist: the artifacts in $DIST pass"
