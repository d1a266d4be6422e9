# Custos: `make demo` to try it, `make test` to prove it. Both install what the machine lacks.

GO        ?= go
BIN       := bin/custos
FUZZTIME  ?= 30s
# Debian packages Custos needs: SoftHSM2 and OpenSC for tokens, poppler/qpdf/NSS tools to check
# PDFs, Xvfb for a display (xwd from x11-apps for screenshots), and the GL/X11 headers Fyne's cgo build needs.
DEBS      := softhsm2 opensc poppler-utils qpdf libnss3-tools openssl xvfb xauth x11-apps \
             gcc pkg-config libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev \
             libxinerama-dev libxi-dev libxxf86vm-dev
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build demo test race bench fuzz screenshots clean

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

build: deps
	$(GO) build -o $(BIN) .

demo: build
	./$(BIN) demo

# Tests that open a real window use the X display; without one, they get a virtual one.
test: deps
	$(GO) vet ./...
	@if [ -z "$$DISPLAY" ] && command -v xvfb-run >/dev/null; then \
	  echo "xvfb-run -a $(GO) test ./..."; xvfb-run -a $(GO) test ./...; \
	else \
	  $(GO) test ./...; \
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
	FYNE_SCALE=1 xvfb-run -a -s "-screen 0 1400x1000x24" ./$(BIN) demo --screenshots docs/screenshots
	# Screens in the middle of a procedure, from the headless tests that drive them.
	CUSTOS_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run 'Wizard|QuorumIssueCA|DecommissionScreen|FleetScreen' ./app

clean:
	rm -rf bin
