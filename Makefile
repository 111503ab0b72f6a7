# kumo: `make run` builds kumo and runs the hello recipe on the local
# provider; `make test` runs the whole suite. Both install what they need
# on a fresh Debian machine (Debian packages only when run as root).

GO      ?= go
BIN     := bin/kumo
RECIPE  ?= recipes/hello.star
# Debian packages: gcc for cgo (mattn/go-sqlite3); python3 and curl are
# what the hello recipe's nodes serve and fetch a page with.
DEB_DEPS := gcc:gcc python3:python3 curl:curl

export CGO_ENABLED := 1

.PHONY: all build run test deps check bench clean

all: build

deps:
	@missing=""; \
	for pair in $(DEB_DEPS); do \
		cmd=$${pair%%:*}; pkg=$${pair##*:}; \
		command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else \
			echo "kumo needs:$$missing (apt-get install$$missing)"; exit 1; \
		fi; \
	fi
	@$(GO) mod download

build: deps
	$(GO) build -o $(BIN) ./cmd/kumo

# Run the hello recipe in this folder's .kumo state. Run it twice: the
# second run replays every cell without touching the nodes.
run: build
	$(BIN) run $(RECIPE)
	@echo
	@echo "Nodes keep running: '$(BIN) status' shows them, '$(BIN) destroy --name hello --yes' removes them."

check:
	@fmt=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi
	$(GO) vet ./...

test: deps check
	$(GO) test -count=1 -timeout 10m ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 20x ./lang/runner/ ./lang/state/
	./bench/replay.sh

clean:
	rm -rf bin .kumo
