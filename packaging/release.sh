#!/bin/sh
# make release: the release artifacts in dist/, built reproducibly from the commit checked out.
#
#   custos_<debversion>_amd64.deb             the binary, desktop entry, icon and notice, for dpkg -i
#   custos-<version>-linux-amd64.tar.xz        the same files for other distributions
#   custos-verify-<version>-linux-amd64        the auditors' static verifier (CGO_ENABLED=0)
#   custos-<version>.cdx.json, custos-verify-<version>.cdx.json   CycloneDX SBOMs
#   custos-<version>-NOTICE.txt                every third-party licence the binaries link
#   SHA256SUMS                                 sha256sum's format, over all of the above
#
# Every input that could differ between two builds of one commit is fixed: the version and
# SOURCE_DATE_EPOCH come from git, paths are trimmed, file times, owners and order in the
# archives are set, and compression is single-threaded with fixed settings. `make reproduce`
# proves it.
set -eu
cd "$(dirname "$0")/.."

export LC_ALL=C TZ=UTC
umask 022
: "${GO:=go}"

if ! git rev-parse --verify -q HEAD >/dev/null; then
  echo "make release: not a git checkout: the version and build time come from the commit" >&2
  exit 1
fi
REVISION=$(git rev-parse HEAD)
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct HEAD)
export SOURCE_DATE_EPOCH
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "make release: warning: the tree has uncommitted changes; the binaries will say modified=true" >&2
fi

# The version: a release tag vX.Y.Z on this commit, else FyneApp.toml's next version marked
# -dev with the commit's time and revision, so dev packages sort by time.
BASE=$(sed -n 's/^ *Version *= *"\(.*\)"/\1/p' FyneApp.toml)
TAG=$(git describe --tags --exact-match --match 'v[0-9]*' HEAD 2>/dev/null || true)
if [ -n "$TAG" ]; then
  VERSION=${TAG#v}
else
  VERSION="$BASE-dev.$(git log -1 --date=format-local:%Y%m%d%H%M%S --format=%cd HEAD).$(git rev-parse --short=12 HEAD)"
fi
# Debian sorts ~ before anything, so 0.2.0~dev... comes before 0.2.0.
DEBVERSION=$(printf '%s' "$VERSION" | sed 's/-/~/')

DIST=dist
BUILD=$DIST/.build
rm -rf "$DIST"
mkdir -p "$BUILD"

LDFLAGS="-X github.com/custos-pki/custos/internal/version.Version=$VERSION"
# Fixed flags: no VCS lookups switched off by the environment, paths trimmed, the C compiler's
# flags stated rather than inherited.
export CGO_CFLAGS="-O2 -g" CGO_LDFLAGS="-O2 -g" GOFLAGS=-mod=readonly
echo "building custos $VERSION ($REVISION)"
CGO_ENABLED=1 $GO build -trimpath -buildvcs=true -ldflags="$LDFLAGS" -o "$BUILD/custos" .
echo "building custos-verify $VERSION"
CGO_ENABLED=0 $GO build -trimpath -buildvcs=true -ldflags="$LDFLAGS" -o "$DIST/custos-verify-$VERSION-linux-amd64" ./cmd/custos-verify

# The binaries must name the commit they were built from (git worktrees give Go no VCS
# information: build from a clone).
for b in "$BUILD/custos" "$DIST/custos-verify-$VERSION-linux-amd64"; do
  if ! $GO version -m "$b" | grep -q "vcs.revision=$REVISION"; then
    echo "make release: $b does not name commit $REVISION in its build information; run make release in a clone, not a git worktree" >&2
    exit 1
  fi
done

NAME=$(sed -n 's/^ *Name *= *"\(.*\)"/\1/p' FyneApp.toml)
APPID=$(sed -n 's/^ *ID *= *"\(.*\)"/\1/p' FyneApp.toml)
ICON=$(sed -n 's/^ *Icon *= *"\(.*\)"/\1/p' FyneApp.toml)
WEBSITE=$(sed -n 's/^ *Website *= *"\(.*\)"/\1/p' FyneApp.toml)
ICONSIZE=$(od -An -tu1 -j16 -N8 "$ICON" | awk '{print $3*256+$4}')

NOTICE="$DIST/custos-$VERSION-NOTICE.txt"
$GO run ./internal/release/cmd/custos-release -version "$VERSION" -time "$SOURCE_DATE_EPOCH" -notice "$NOTICE" \
  -bin custos=.,CGO_ENABLED=1 -bin custos-verify=./cmd/custos-verify,CGO_ENABLED=0 \
  -sbom "custos=$BUILD/custos=$DIST/custos-$VERSION.cdx.json" \
  -sbom "custos-verify=$DIST/custos-verify-$VERSION-linux-amd64=$DIST/custos-verify-$VERSION.cdx.json"

# stage ROOT PREFIX: the installed files under ROOT/PREFIX, with fixed modes and times.
stage() {
  root=$1 prefix=$2
  install -d "$root$prefix/bin" "$root$prefix/share/applications" "$root$prefix/share/icons/hicolor/${ICONSIZE}x$ICONSIZE/apps" \
    "$root$prefix/share/doc/custos"
  install -m 0755 "$BUILD/custos" "$root$prefix/bin/custos"
  install -m 0644 "$ICON" "$root$prefix/share/icons/hicolor/${ICONSIZE}x$ICONSIZE/apps/$APPID.png"
  install -m 0644 "$NOTICE" "$root$prefix/share/doc/custos/NOTICE"
  cat > "$root$prefix/share/applications/$APPID.desktop" <<EOF
[Desktop Entry]
Type=Application
Name=$NAME
GenericName=Private CA for medical devices
Comment=Root key ceremonies, device decommissioning and signed records on an air-gapped workstation
Exec=custos
Icon=$APPID
Terminal=false
Categories=Utility;Security;
EOF
  chmod 0644 "$root$prefix/share/applications/$APPID.desktop"
  find "$root" -type d -exec chmod 0755 {} +
  find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}

# The Debian package.
DEB=$BUILD/deb
stage "$DEB" /usr
mkdir -p "$DEB/DEBIAN" "$BUILD/shlibs/debian"
# dpkg-shlibdeps names the packages of the shared libraries the binary links, with the
# versions its symbols need: the runtime libraries and nothing else.
printf 'Source: custos\n\nPackage: custos\nArchitecture: amd64\n' > "$BUILD/shlibs/debian/control"
cp "$BUILD/custos" "$BUILD/shlibs/custos"
DEPENDS=$(cd "$BUILD/shlibs" && dpkg-shlibdeps -O custos 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
if [ -z "$DEPENDS" ]; then
  echo "make release: dpkg-shlibdeps found no libraries for custos" >&2
  exit 1
fi
SIZE=$(find "$DEB/usr" -type f -printf '%s\n' | awk '{s += int(($1 + 1023) / 1024)} END {print s}')
cat > "$DEB/DEBIAN/control" <<EOF
Package: custos
Version: $DEBVERSION
Architecture: amd64
Maintainer: Custos project (https://github.com/custos-pki/custos)
Installed-Size: $SIZE
Depends: $DEPENDS
Recommends: softhsm2, opensc
Section: misc
Priority: optional
Homepage: $WEBSITE
Description: private CA for medical-device manufacturers, on an air-gapped workstation
 Custos runs root key ceremonies under an M-of-N custodian quorum on an HSM,
 decommissions devices (erase, verify, revoke, CRL) and writes signed PDF
 records that auditors verify. It reaches HSMs and device key stores through
 their vendors' PKCS#11 modules; SoftHSM2 and OpenSC are recommended for
 trying it and for checking tokens.
EOF
chmod 0644 "$DEB/DEBIAN/control"
touch -h -d "@$SOURCE_DATE_EPOCH" "$DEB/DEBIAN" "$DEB/DEBIAN/control"
dpkg-deb --root-owner-group -Zxz -z6 -Snone --threads-max=1 --build "$DEB" "$DIST/custos_${DEBVERSION}_amd64.deb" >/dev/null

# The tarball: the same files under custos-<version>/ for /usr/local or /opt.
TARDIR=custos-$VERSION-linux-amd64
stage "$BUILD/tar/$TARDIR" ""
touch -h -d "@$SOURCE_DATE_EPOCH" "$BUILD/tar/$TARDIR"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner --format=gnu \
  -C "$BUILD/tar" -cf - "$TARDIR" | xz -T1 -6 -c > "$DIST/$TARDIR.tar.xz"

rm -rf "$BUILD"
(cd "$DIST" && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' | sort | xargs sha256sum > SHA256SUMS)
echo "dist/ for custos $VERSION (commit $REVISION, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH):"
cat "$DIST/SHA256SUMS"
