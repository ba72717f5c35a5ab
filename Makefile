# mkgraph: `make run` serves the facade on :8080 over the embedded sandbox;
# `make test` runs everything CI runs.
GO      ?= go
GQLGEN  := $(GO) run github.com/99designs/gqlgen
GENERATED := graph/generated.go graph/model/models_gen.go graph/*.resolvers.go

.PHONY: run test redis js-deps vet fmt-check check-generate generate bench lint fmt tidy sandbox

run: ## serve on :8080 (GraphiQL at http://localhost:8080/)
	$(GO) run .

sandbox: ## serve only the MoneyKit sandbox on 127.0.0.1:8081
	$(GO) run . sandbox -addr 127.0.0.1:8081

test: redis js-deps fmt-check vet check-generate ## vet, generated-code check, race tests (starts a loopback Redis), GraphQL over HTTP audit
	$(GO) test -race -count=1 ./...

# The GraphQL over HTTP audit (audit_test.go) runs graphql-http, pinned in
# testdata/js/audit/package-lock.json, under node: installed with npm ci
# when node_modules is missing or older than the lockfile.
AUDIT_DIR := testdata/js/audit
js-deps: $(AUDIT_DIR)/node_modules/.package-lock.json

$(AUDIT_DIR)/node_modules/.package-lock.json: $(AUDIT_DIR)/package-lock.json $(AUDIT_DIR)/package.json
	npm ci --prefix $(AUDIT_DIR) --no-audit --no-fund
	@touch $@

# The Redis tests need a redis-server on 127.0.0.1:6379: installed from
# Debian's packages when missing, started (no persistence) when not running.
redis:
	@bash .ci/ensure-redis

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

.PHONY: load
load: redis ## load benchmarks over loopback (writes docs/performance.md)
	LOAD_WRITE=1 $(GO) test -tags load -run TestLoad -count=1 -v -timeout 15m .
