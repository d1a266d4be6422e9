# Custos: `make demo` to try it, `make test` to prove it. Both install what the machine lacks.

GO        ?= go
BIN       := bin/custos
VERIFY    := bin/custos-verify
FUZZTIME  ?= 30s
# Debian packages Custos needs: SoftHSM2 and OpenSC for tokens, poppler/qpdf/NSS tools to check
# PDFs, Little CMS's utilities to check the records' colour profile, Xvfb for a display (xwd from
# x11-apps for screenshots), file to check custos-verify is static, the GL/X11 headers Fyne's cgo build needs, a software TPM behind tpm2-pkcs11 for device tokens
# in the tests (swtpm, tpm2-abrmd on its own D-Bus, the tabrmd TCTI, tpm2-tools), and for make
# release and make reproduce dpkg-dev, xz and a JSON schema validator for the SBOM.
DEBS      := softhsm2 opensc poppler-utils qpdf libnss3-tools liblcms2-utils openssl xvfb xauth x11-apps file \
             gcc pkg-config libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev \
             libxinerama-dev libxi-dev libxxf86vm-dev \
             swtpm swtpm-tools tpm2-abrmd libtss2-tcti-tabrmd0 libtpm2-pkcs11-1 tpm2-tools dbus \
             dpkg-dev xz-utils python3-jsonschema
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build verifier demo test race bench fuzz screenshots release reproduce clean

all: build

# deps installs the Debian packages that are missing, and nothing when all are present.
deps:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if ! command -v apt-get >/dev/null; then echo "Custos needs:$$missing (install them with your package manager)"; exit 1; fi; \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: verifier
	$(GO) build -o $(BIN) .

# verifier builds the auditor's custos-verify without cgo (bin/custos-verify), and fails unless it
# is a static binary that holds neither the HSM layer, the workflows nor the GUI: it must start on
# any computer, without an HSM library or a display.
verifier: deps
	CGO_ENABLED=0 $(GO) build -o $(VERIFY) ./cmd/custos-verify
	@file $(VERIFY) | grep -q 'statically linked' || { file $(VERIFY); echo "$(VERIFY) is not a static binary"; exit 1; }
	@if CGO_ENABLED=0 $(GO) list -deps ./cmd/custos-verify | grep -E '/custos/(hsm|ceremony|decommission|app)$$'; then \
	  echo "custos-verify must not import these"; exit 1; fi

demo: build
	./$(BIN) demo

# The packages that need neither cgo, nor PKCS#11, nor the GUI: make test builds and tests them
# with CGO_ENABLED=0 (and only so: cgo changes nothing in them). Every other package but the GUI
# (app, and the main package that opens it) must still build and vet without cgo, hsm's stub
# standing in for PKCS#11; internal/layering keeps the imports that way.
MODULE    := github.com/custos-pki/custos
PURE      := ./keyalg ./quorum ./pki ./record ./registry ./workspace ./udi ./internal/inputfile ./cli/command ./cli/audit
NOT_PURE   = $$($(GO) list ./... | grep -v -x $(patsubst ./%,-e $(MODULE)/%,$(PURE)))
NOT_GUI    = $$($(GO) list ./... | grep -v -x -e $(MODULE) -e $(MODULE)/app)

# Tests that open a real window use the X display; without one, they get a virtual one.
# The auditor's packages are among the pure ones, tested without cgo as custos-verify is built.
# A package's tests may take 60 minutes (not go test's 10) on a busy two-core machine: the kill
# tests start hundreds of processes.
test: verifier
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) vet $(NOT_GUI)
	CGO_ENABLED=0 $(GO) build $(PURE) ./cmd/custos-verify
	CGO_ENABLED=0 $(GO) test $(PURE)
	CGO_ENABLED=0 $(GO) test ./hsm
	@if [ -z "$$DISPLAY" ] && command -v xvfb-run >/dev/null; then \
	  echo "xvfb-run -a $(GO) test (all but the pure packages)"; xvfb-run -a $(GO) test -timeout 60m $(NOT_PURE); \
	else \
	  $(GO) test -timeout 60m $(NOT_PURE); \
	fi

# The race detector over every package; -short leaves out the long fault sweeps.
race: deps
	xvfb-run -a $(GO) test -race -short ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

fuzz: deps
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f for $(FUZZTIME)"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

screenshots: build
	FYNE_SCALE=1 FYNE_THEME=light xvfb-run -a -s "-screen 0 1400x1000x24" ./$(BIN) demo --screenshots docs/screenshots
	FYNE_SCALE=1 FYNE_THEME=dark xvfb-run -a -s "-screen 0 1400x1000x24" ./$(BIN) demo --screenshots docs/screenshots/dark
	# Screens in the middle of a procedure, from the headless tests that drive them.
	CUSTOS_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run 'Wizard|QuorumIssueCA|Reshare|DecommissionScreen|FleetScreen|DevicesScreen|VerifyAny|ResumesACeremony' ./app

# The release artifacts in dist/ (see packaging/release.sh), built reproducibly from the commit.
release: deps
	packaging/release.sh

# Two clones in two folders, make release in each, SHA256SUMS compared byte for byte, then the
# artifacts checked with dpkg-deb, tar, sha256sum and a CycloneDX schema validator.
reproduce: deps
	packaging/reproduce.sh

clean:
	rm -rf bin dist
