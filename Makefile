# mkgraph: `make run` serves the facade on :8080 over the embedded sandbox;
# `make test` runs everything CI runs.
GO      ?= go
GQLGEN  := $(GO) run github.com/99designs/gqlgen
GENERATED := graph/generated.go graph/model/models_gen.go graph/*.resolvers.go

.PHONY: run test redis chromium graphiql js-deps vet fmt-check check-generate generate bench lint fmt tidy sandbox

run: graphiql ## serve on :8080 (GraphiQL at http://localhost:8080/)
	$(GO) run .

sandbox: ## serve only the MoneyKit sandbox on 127.0.0.1:8081
	$(GO) run . sandbox -addr 127.0.0.1:8081

test: graphiql redis chromium js-deps fmt-check vet check-generate ## vet, generated-code check, race tests (starts Redis, installs Chromium and the npm test clients)
	$(GO) test -race -count=1 ./...

# The node clients the tests run, each pinned by its own lockfile and
# installed with npm ci when its node_modules is missing or older than the
# lockfile: graphql-http's server audit (audit_test.go) and Apollo Client 4
# (defer_apollo_test.go), and the graphql-ws library (graphqlws_node_test.go).
JS_CLIENTS := testdata/js/audit testdata/js/apollo testdata/js/graphql-ws
js-deps: $(addsuffix /node_modules/.package-lock.json,$(JS_CLIENTS))

testdata/js/%/node_modules/.package-lock.json: testdata/js/%/package-lock.json testdata/js/%/package.json
	npm ci --prefix testdata/js/$* --no-audit --no-fund
	@touch $@

# The Redis tests need a redis-server on 127.0.0.1:6379: installed from
# Debian's packages when missing, started (no persistence) when not running.
redis:
	@bash .ci/ensure-redis

# The GraphiQL browser test needs /usr/bin/chromium: installed from Debian's
# packages when missing.
chromium:
	@bash .ci/ensure-chromium

# GraphiQL's bundle, embedded by internal/graphiql: the npm packages pinned by
# package-lock.json (npm ci checks their integrity), bundled by esbuild with
# our entry into internal/graphiql/dist (git-ignored). Nothing happens when
# the bundle is newer than the lockfile and the sources. Needs Node.js + npm.
GRAPHIQL_WEB := internal/graphiql/web
GRAPHIQL_OUT := internal/graphiql/dist/manifest.json

graphiql: $(GRAPHIQL_OUT) ## bundle GraphiQL for the binary (node + npm)

$(GRAPHIQL_OUT): $(GRAPHIQL_WEB)/package.json $(GRAPHIQL_WEB)/package-lock.json $(GRAPHIQL_WEB)/build.mjs $(wildcard $(GRAPHIQL_WEB)/src/*)
	cd $(GRAPHIQL_WEB) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && node build.mjs

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# Regenerates gqlgen code and fails when that changed anything: the checked-in
# code was stale. On CI (a clean clone) git must also see no change at all.
check-generate:
	@before=$$(cat $(GENERATED) | sha256sum); \
	$(GQLGEN) generate || exit 1; \
	after=$$(cat $(GENERATED) | sha256sum); \
	if [ "$$before" != "$$after" ]; then echo "generated gqlgen code was stale; it has been regenerated: review and commit it"; exit 1; fi; \
	if [ -n "$$CI" ]; then git diff --exit-code && test -z "$$(git status --porcelain)" || { echo "regenerating changed the checkout (generated code or go.mod not committed)"; exit 1; }; fi

generate: ## regenerate gqlgen code after editing graph/*.graphqls
	$(GQLGEN) generate

bench: ## in-process benchmarks of full GraphQL requests
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./...

lint: fmt-check vet

fmt:
	gofmt -w $$(git ls-files '*.go')

tidy:
	$(GO) mod tidy

.PHONY: soak
soak: ## 30 s fault soak on loopback (writes docs/resilience.md)
	SOAK_WRITE=1 $(GO) test -tags soak -run TestSoak -count=1 -v -timeout 10m .

# TestLoad (issue 5's scenarios) and TestLoadPeer (issue 12's peer comparison);
# LOAD_TAILCALL=1 make load also runs Tailcall (npm ci into a temporary copy of
# ../shared/bench/tailcall) beside the facade; LOAD_GQLGEN=0 skips the runs on
# gqlgen's executor (MKGRAPH_EXECUTOR=gqlgen) that measure the plan's gain.
.PHONY: load
load: redis ## load benchmarks over loopback (writes docs/performance.md)
	LOAD_WRITE=1 $(GO) test -tags load -run TestLoad -count=1 -v -timeout 30m .
