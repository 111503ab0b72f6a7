# kumo: `make run` builds kumo and runs the hello recipe on the local
# provider; `make test` runs the whole suite. Both install what they need
# on a fresh Debian machine (Debian packages only when run as root).

GO      ?= go
BIN     := bin/kumo
PREFIX  ?= /usr/local
RECIPE  ?= recipes/hello.star
# Debian packages: gcc for cgo (mattn/go-sqlite3); python3 and curl are
# what the hello recipe's nodes serve and fetch a page with. The tests
# also start OpenSSH's sshd and use sudo, and boot container nodes
# (debootstrap builds their image, systemd-nspawn boots them, nftables
# gives their networks NAT; debootstrap checks Debian's archive with
# gnupg and its keyring), drive the emulators with Debian's OpenStack
# CLI and AWS CLI, and drive kumo's Jupyter kernel with Debian's Jupyter
# (jupyter_client, console, nbconvert, nbclient, jupyter_kernel_test);
# the fan-out benchmark compares with ansible and pssh. Packages come
# without their recommends (wireguard-tools' would pull a kernel): what
# a recommend gave that kumo needs is listed here itself.
DEB_DEPS       := gcc:gcc /usr/include/stdio.h:libc6-dev python3:python3 curl:curl
TEST_DEB_DEPS  := /usr/sbin/sshd:openssh-server ssh:openssh-client sudo:sudo \
                  debootstrap:debootstrap systemd-nspawn:systemd-container nft:nftables \
                  tmux:tmux /usr/lib/python3/dist-packages/nbformat:python3-nbformat \
                  openstack:python3-openstackclient /usr/bin/aws:awscli \
                  /usr/lib/postgresql/15/bin/initdb:postgresql /usr/sbin/pgbouncer:pgbouncer \
                  gpg:gnupg /usr/share/keyrings/debian-archive-keyring.gpg:debian-archive-keyring /etc/services:netbase \
                  jupyter-kernelspec:jupyter-client jupyter-console:jupyter-console jupyter-nbconvert:jupyter-nbconvert \
                  /usr/lib/python3/dist-packages/nbclient:python3-nbclient \
                  /usr/lib/python3/dist-packages/jupyter_kernel_test:python3-jupyter-kernel-test
BENCH_DEB_DEPS := ansible:ansible parallel-ssh:pssh
# A real OpenStack for make test-openstack: Debian's Zed (Keystone, Glance,
# Placement, Nova, Neutron's server) on MariaDB and RabbitMQ; not the
# nova-compute package (it pulls libvirt and qemu): the tests run Nova's
# compute with the fake driver from python3-nova.
OPENSTACK_DEB_DEPS := /usr/sbin/mariadbd:mariadb-server /usr/lib/rabbitmq/bin/rabbitmq-server:rabbitmq-server \
                  keystone-manage:python3-keystone /usr/lib/python3/dist-packages/glance:python3-glance \
                  placement-api:python3-placement /usr/lib/python3/dist-packages/nova:python3-nova \
                  /usr/lib/python3/dist-packages/neutron:python3-neutron \
                  /usr/lib/python3/dist-packages/pymysql:python3-pymysql openstack:python3-openstackclient
# Unprivileged users the tests run sshd as: kumotest may sudo without a
# password, kumotest2 may not.
TEST_USERS     := kumotest kumotest2

export CGO_ENABLED := 1
# The Go toolchain go.mod names (a patched release: govulncheck finds the
# standard library's fixed vulnerabilities otherwise), fetched once
# through the Go module proxy when the machine's Go is older.
export GOTOOLCHAIN := auto

.PHONY: test-openstack bench-openstack openstack-up bench-kernel notebooks install bench-mesh bench-fanout500 bench-cloud1000 test-long vulncheck fuzz bench-journal all build run test deps test-deps bench-deps install-debs check container-image apt-cache bench bench-replay bench-fanout bench-drift bench-cloudscale bench-containers clean

all: build

deps:
	@$(MAKE) -s install-debs PKGS="$(DEB_DEPS)"
	@$(GO) mod download

test-deps: deps
	@# Debian's postgresql would make and start a cluster of its own on
	@# port 5432: the tests start their own servers and need none.
	@if [ "$$(id -u)" = 0 ] && [ ! -e /usr/lib/postgresql ]; then \
		mkdir -p /etc/postgresql-common/createcluster.d; \
		echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/kumo.conf; \
	fi
	@$(MAKE) -s install-debs PKGS="$(TEST_DEB_DEPS)"
	@if [ "$$(id -u)" = 0 ]; then \
		for u in $(TEST_USERS); do \
			id $$u >/dev/null 2>&1 || useradd -m -s /bin/sh $$u; \
			usermod -p '*' $$u; \
		done; \
		echo 'kumotest ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/kumotest; \
		echo 'kumotest2 ALL=(ALL) ALL' > /etc/sudoers.d/kumotest2; \
		chmod 0440 /etc/sudoers.d/kumotest /etc/sudoers.d/kumotest2; \
		$(MAKE) -s container-image apt-cache; \
	fi

# The image container nodes boot, built once per machine (about a minute)
# and kept in ~/.cache/kumo/images: tests and recipes reuse it.
container-image: build
	@$(BIN) image list | grep -q '^debian-bookworm ' || $(BIN) image build -q

# The package cache container nodes download through (root): Debian's
# apt-cacher-ng on port 3142, fetching from the mirror the host's apt
# uses (its default mirror list names hosts this machine may not reach),
# so the recipes' tests download each package once. The container
# provider finds it there; KUMO_APT_CACHE=off does without.
ACNG_CONF := /etc/apt-cacher-ng/zzz_kumo.conf
apt-cache:
	@$(MAKE) -s install-debs PKGS="/usr/sbin/apt-cacher-ng:apt-cacher-ng"
	@mirror=$$(grep -rhoE '^(URIs:|deb) +http://[^ ]+/debian/?$$|^deb +http://[^ ]+/debian/? ' \
		/etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | awk '{print $$2}' | head -1); \
	want="Remap-debrep: file:deb_mirror*.gz /debian ; $${mirror:-http://deb.debian.org/debian}"; \
	if [ "$$(cat $(ACNG_CONF) 2>/dev/null)" != "$$want" ]; then \
		echo "$$want" > $(ACNG_CONF); /etc/init.d/apt-cacher-ng restart >/dev/null; \
	elif ! curl -s -o /dev/null http://127.0.0.1:3142/; then \
		/etc/init.d/apt-cacher-ng start >/dev/null; \
	fi

bench-deps: test-deps
	@$(MAKE) -s install-debs PKGS="$(BENCH_DEB_DEPS)"

# install-debs PKGS="cmd:package ...": apt-get the packages whose command
# (or file, for a path) is missing. Their daemons are not started (a
# policy-rc.d says no while apt runs): tests start the servers they need
# on loopback ports of their own.
install-debs:
	@missing=""; \
	for pair in $(PKGS); do \
		cmd=$${pair%%:*}; pkg=$${pair##*:}; \
		{ command -v $$cmd || test -e $$cmd; } >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			policy=""; if [ ! -e /usr/sbin/policy-rc.d ]; then \
				printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; policy=1; \
			fi; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
			rc=$$?; [ -z "$$policy" ] || rm -f /usr/sbin/policy-rc.d; [ $$rc = 0 ] || exit $$rc; \
		else \
			echo "kumo needs:$$missing (apt-get install$$missing)"; exit 1; \
		fi; \
	fi

# kumo, and beside it the WireGuard agent mesh() installs on nodes: static
# (no cgo), so that the one file runs on any Linux node, and stripped
# (3.5 MB, not 5.2): it is copied to every node of a mesh.
build: deps
	$(GO) build -buildvcs=auto -trimpath -ldflags="-s -w" -o $(BIN) ./cmd/kumo
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o $(dir $(BIN))kumo-wg ./cmd/kumo-wg

# Run the hello recipe; its state goes beside it (recipes/.kumo). Run it
# twice: the second run replays every cell without touching the nodes.
run: build
	$(BIN) run $(RECIPE)
	@echo
	@echo "Nodes keep running: 'cd $(dir $(RECIPE)) && $(abspath $(BIN)) status' shows them, '$(abspath $(BIN)) destroy --name hello --yes' there removes them."
	@echo "'make install' puts kumo (and its mesh agent kumo-wg) in $(PREFIX)/bin, so that plain 'kumo' works."

# kumo and the mesh agent it copies to nodes (found beside it).
install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN) $(dir $(BIN))kumo-wg $(DESTDIR)$(PREFIX)/bin/

# The recipes shipped as Jupyter notebooks too, written from their .star
# (a test checks that they match).
NOTEBOOKS := recipes/jupyterhub/class.ipynb
notebooks: build
	@for nb in $(NOTEBOOKS); do $(BIN) convert --force $${nb%.ipynb}.star -o $$nb; done

check:
	@fmt=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi
	$(GO) vet ./...

# The state's and the runner's tests run on SQLite and on PostgreSQL (a
# server of Debian's postgresql each test process starts on a loopback
# port: state/pgtest); without it installed they would skip that.
test: test-deps check vulncheck
	KUMO_REQUIRE_POSTGRES=1 $(GO) test -count=1 -timeout 30m ./...
	KUMO_REQUIRE_POSTGRES=1 KUMO_TEST_BACKEND=postgres $(GO) test -count=1 ./runner/
	@$(MAKE) -s fuzz FUZZTIME=3s

# kumo against a real OpenStack (providers/openstack/realstack starts one
# on loopback in each test process, about 90 s, and stops it): the
# emulator's answers compared with the real APIs', the provider's
# lifecycle, and recipes run, killed and resumed against real Nova.
# .ci/run runs it after make test. -p 1: one cloud at a time (each takes
# about 2 GB).
test-openstack: test-deps
	@$(MAKE) -s install-debs PKGS="$(OPENSTACK_DEB_DEPS)"
	KUMO_REAL_OPENSTACK=1 $(GO) test -count=1 -p 1 -timeout 20m -run 'RealOpenStack' -v ./providers/openstack/ ./cmd/kumo/

# Create and delete 1 and 10 servers with kumo's provider, against real
# Nova and against the emulator in the same process.
bench-openstack: test-deps
	@$(MAKE) -s install-debs PKGS="$(OPENSTACK_DEB_DEPS)"
	KUMO_REAL_OPENSTACK=1 $(GO) test -run '^$$' -bench CreateDelete -benchtime 3x -timeout 30m ./providers/openstack/

# A real OpenStack kept up until Ctrl-C, for the openstack CLI and kumo
# by hand; KUMO_REALSTACK_DIR=its folder makes the tests use it.
openstack-up: test-deps
	@$(MAKE) -s install-debs PKGS="$(OPENSTACK_DEB_DEPS)"
	$(GO) run ./providers/openstack/realstack/up

# The long forms: 200 kill points of the crash harness (seeded: the seed
# is printed; KUMO_CRASH_SEED replays it) and every fuzz target for
# LONG_FUZZTIME.
LONG_FUZZTIME ?= 5m
test-long: test-deps
	KUMO_CRASH_POINTS=200 $(GO) test -count=1 -timeout 90m -run '^TestCrashAnywhere$$' -v ./cmd/kumo/
	@$(MAKE) -s fuzz FUZZTIME=$(LONG_FUZZTIME)

# govulncheck against the Go vulnerability database. vuln.go.dev is not
# reachable from every machine; the database's source, golang.org/x/vulndb,
# comes through the Go module proxy, and its own indexdb command builds
# the database from it (once per database version, kept in VULNDB_CACHE).
GOVULNCHECK  := golang.org/x/vuln/cmd/govulncheck@v1.9.0
VULNDB_CACHE ?= $(HOME)/.cache/kumo/vulndb
vulncheck:
	@v=$$($(GO) list -m -json golang.org/x/vulndb@latest | sed -n 's/.*"Version": "\(.*\)".*/\1/p'); \
	db=$(VULNDB_CACHE)/$$v; \
	if [ ! -f $$db/index/db.json ]; then \
		src=$$($(GO) mod download -json golang.org/x/vulndb@$$v | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'); \
		rm -rf $$db.tmp && mkdir -p $(VULNDB_CACHE) && \
		GOFLAGS=-mod=mod $(GO) run golang.org/x/vulndb/cmd/indexdb@$$v -vulns $$src/data/osv -out $$db.tmp && mv $$db.tmp $$db || exit 1; \
	fi; \
	echo "govulncheck (database $$v):"; \
	$(GO) run $(GOVULNCHECK) -db file://$$db ./...

# Fuzz targets (package:function): what users and clouds send kumo.
# `make fuzz` runs each for FUZZTIME (go test -fuzz; failing inputs are
# kept under the package's testdata/fuzz and rerun by plain go test);
# `make test` gives each 3 seconds. FUZZFLAGS: e.g. -parallel 1.
FUZZ_TARGETS := lang:FuzzSplitCells lang:FuzzParseRecipe lang:FuzzOverride \
                builtins:FuzzDecode builtins/units:FuzzFlavorCatalog \
                providers/onprem:FuzzInventory \
                providers/aws/ec2emu:FuzzRequest providers/openstack/osemu:FuzzRequest
FUZZTIME ?= 1m
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		out=$$($(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./$$pkg/ 2>&1); \
		if [ $$? != 0 ]; then echo "$$out"; echo "fuzz $$pkg $$fn: FAILED"; exit 1; fi; \
		echo "fuzz $$pkg $$fn: $$(echo "$$out" | grep -o 'execs: [0-9]*' | tail -1 | cut -d' ' -f2) inputs in $(FUZZTIME), nothing found"; \
	done

bench: bench-deps build
	$(GO) test -run '^$$' -bench . -benchtime 20x ./runner/ ./state/
	./bench/replay.sh
	CELLS=100 CALLS=100 ./bench/replay.sh 5
	$(GO) run ./bench/fanout -kumo $(BIN)
	$(GO) run ./bench/cloudscale -kumo $(BIN)
	@if [ "$$(id -u)" = 0 ]; then $(GO) run ./bench/containers -kumo $(BIN); fi

# Replay only: 50 cells / 500 calls unchanged and with one cell edited,
# against the last kumo with prefix replay (REPLAY_BASELINE, a git
# revision) built from this repository and measured in the same run.
REPLAY_BASELINE ?= b97c0b0
bench-replay: build
	./bench/replay.sh 20 $(REPLAY_BASELINE)

# The journal at scale: 100 cells of 100 journaled calls (10,000), whole
# kumo run processes replaying them (target: under 1 s).
bench-journal: build
	CELLS=100 CALLS=100 ./bench/replay.sh 5

# Fan-out only: 50 OpenSSH hosts, kumo against ansible, pssh and OpenSSH
# (with OpenSSH's default key exchange and with kumo's, curve25519);
# bench-fanout500: the same on 500 hosts.
bench-fanout: bench-deps build
	$(GO) run ./bench/fanout -kumo $(BIN)
bench-fanout500: bench-deps build
	$(GO) run ./bench/fanout -kumo $(BIN) -hosts 500 -rounds 3

# Drift on 50 loopback hosts (root: each has its own files): kumo check
# and run --verify against ansible-playbook --check and a re-run.
bench-drift: bench-deps build
	$(GO) run ./bench/drift -kumo $(BIN) -hosts 50 -drifted 5

# Cloud scaling only: 1, 10, 100 nodes through the EC2 and OpenStack
# emulators with 300 ms per API call and rate limits.
bench-cloudscale: build
	$(GO) run ./bench/cloudscale -kumo $(BIN)

# The API path at scale: 1,000 instances (no nodes behind them) created
# and deleted through each emulator, 100 ms per API call.
bench-cloud1000: build
	$(GO) run ./bench/cloudscale -kumo $(BIN) -api-only -sizes 1,1000 -latency 100ms

# The mesh over three sites (root): setup for 3, 9 and 30 nodes, throughput
# and round-trip time against Debian's wireguard-go and the underlay,
# and an idle agent's memory and CPU.
bench-mesh: test-deps build
	$(GO) run ./bench/mesh -kumo $(BIN)

# Container nodes only (root): a fresh image build, create-to-SSH for 1,
# 5 and 10 nodes, memory and disk per idle node.
bench-containers: test-deps build
	$(GO) run ./bench/containers -kumo $(BIN)

# The Jupyter kernel, driven by Debian's Jupyter: start to ready and an
# execute round trip against ipykernel, and a 50-cell notebook replayed
# through nbclient against kumo run of it.
bench-kernel: test-deps build
	/usr/bin/python3 bench/kernel/bench.py $(BIN)

clean:
	rm -rf bin .kumo $(dir $(RECIPE)).kumo
