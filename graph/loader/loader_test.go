package loader

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
)

func TestLinkDuplicatesInOneRequestFetchOnce(t *testing.T) {
	ff := &fakeFetcher{delay: 5 * time.Millisecond}
	ctx := MustRequest(t, NewFactory(Config{Fetcher: ff}))

	// Selections of one link resolved together, as gqlgen resolves aliases
	// and fragments: Link and Links from many goroutines at once.
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if l, err := Link(ctx, "a"); err != nil || l == nil || l.ID != "a" {
				t.Errorf("Link(ctx, %q) = %v, %v; want link a", "a", l, err)
			}
		})
		wg.Go(func() {
			links, errs := Links(ctx, []string{"a", "b", "a"})
			if errs != nil {
				t.Errorf("Links(ctx, [a b a]) errs = %v, want nil", errs)
			}
			for i, want := range []string{"a", "b", "a"} {
				if links[i] == nil || links[i].ID != want {
					t.Errorf("Links(ctx, [a b a])[%d] = %v, want link %s", i, links[i], want)
				}
			}
		})
	}
	wg.Wait()
	// Later in the same request: served from the request's cache.
	if _, err := Link(ctx, "a"); err != nil {
		t.Fatalf("Link(ctx, a) again: %v", err)
	}

	for _, id := range []string{"a", "b"} {
		if got := ff.callsFor(id); got != 1 {
			t.Errorf("fetches of %q = %d, want 1", id, got)
		}
	}
	if got := ff.totalCalls(); got != 2 {
		t.Errorf("total fetches = %d, want 2", got)
	}
}

func TestLinksOrderAndErrors(t *testing.T) {
	notFound := &apierr.Error{Status: http.StatusNotFound, Code: "link_error.not_found", Message: "Link not found."}
	gone := &apierr.Error{Status: http.StatusGone, Code: "link_error.deleted", Message: "Deleted."}
	// The client's own refusal of a dot segment, without a call.
	dots := apierr.InvalidArgument("A link id must not be empty or a dot segment.")
	ff := &fakeFetcher{errs: map[string]error{"missing": notFound, "gone": gone, "..": dots}}
	ctx := MustRequest(t, NewFactory(Config{Fetcher: ff}))

	ids := []string{"c", "missing", "a", "c", "gone", "b", "missing", "..", "a"}
	wantCodes := []string{"", "link_error.not_found", "", "", "link_error.deleted", "", "link_error.not_found", apierr.CodeInvalidArgument, ""}

	links, errs := Links(ctx, ids)
	if len(links) != len(ids) || len(errs) != len(ids) {
		t.Fatalf("Links(%q) = %d links, %d errs; want %d of each", ids, len(links), len(errs), len(ids))
	}
	for i, id := range ids {
		if wantCodes[i] == "" {
			if errs[i] != nil || links[i] == nil || links[i].ID != id {
				t.Errorf("Links[%d] (%q) = %v, %v; want link %s and no error", i, id, links[i], errs[i], id)
			}
			continue
		}
		if links[i] != nil {
			t.Errorf("Links[%d] (%q) = %+v, want nil", i, id, links[i])
		}
		if got := errCode(errs[i]); got != wantCodes[i] {
			t.Errorf("Links[%d] (%q) error code = %s, want %s", i, id, got, wantCodes[i])
		}
	}
	// The upstream's own error value comes through, not a copy or a wrapper
	// that loses the details.
	if !errors.Is(errs[4], gone) {
		t.Errorf("Links[4] error = %v, want the fetcher's %v", errs[4], gone)
	}
	// Every distinct id is fetched once: validating ids is the resolvers'.
	for _, id := range []string{"a", "b", "c", "missing", "gone", ".."} {
		if got := ff.callsFor(id); got != 1 {
			t.Errorf("fetches of %q = %d, want 1", id, got)
		}
	}
}

func TestLinksEmptyAndAllGood(t *testing.T) {
	ff := &fakeFetcher{}
	ctx := MustRequest(t, NewFactory(Config{Fetcher: ff}))

	links, errs := Links(ctx, nil)
	if len(links) != 0 || errs != nil {
		t.Errorf("Links(ctx, nil) = %v, %v; want empty, nil", links, errs)
	}
	links, errs = Links(ctx, []string{"x", "y"})
	if errs != nil {
		t.Errorf("Links(ctx, [x y]) errs = %v, want nil when every link loaded", errs)
	}
	if got := []string{links[0].ID, links[1].ID}; !cmp.Equal(got, []string{"x", "y"}) {
		t.Errorf("Links(ctx, [x y]) ids = %q", got)
	}
}

// TestBatch checks the batch function itself: one non-nil result per key, in
// key order, and the context it was given passed to the fetcher.
func TestBatch(t *testing.T) {
	type ctxMarker struct{}
	ff := &fakeFetcher{
		errs:   map[string]error{"e": &apierr.Error{Code: "link_error.forbidden_action", Status: 403}},
		panics: map[string]any{"p": "boom"},
	}
	l := NewFactory(Config{Fetcher: ff, Concurrency: 3}).New()
	ctx := context.WithValue(context.Background(), ctxMarker{}, "batch-ctx")

	tests := []struct {
		name string
		keys []string
	}{
		{"one", []string{"a"}},
		{"one failing", []string{"e"}},
		{"one invalid", []string{""}},
		{"mixed", []string{"z", "e", "y", "p", strings.Repeat("x", 129), "x", "w"}},
		{"many", strings.Fields("k0 k1 k2 k3 k4 k5 k6 k7 k8 k9 k10 k11 k12")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			results := l.batch(ctx, tt.keys)
			if len(results) != len(tt.keys) {
				t.Fatalf("batch(%q) returned %d results, want %d", tt.keys, len(results), len(tt.keys))
			}
			for i, r := range results {
				if r == nil {
					t.Errorf("batch result %d (%q) is nil", i, tt.keys[i])
					continue
				}
				switch {
				case r.Error == nil && r.Data == nil:
					t.Errorf("batch result %d (%q) has neither data nor error", i, tt.keys[i])
				case r.Error == nil && r.Data.ID != tt.keys[i]:
					t.Errorf("batch result %d is link %q, want %q (key order)", i, r.Data.ID, tt.keys[i])
				case r.Error != nil && r.Data != nil:
					t.Errorf("batch result %d (%q) has data and error %v", i, tt.keys[i], r.Error)
				}
			}
		})
	}

	ctxs := ff.contexts()
	if len(ctxs) == 0 {
		t.Fatal("fetcher never called")
	}
	for i, c := range ctxs {
		if got := c.Value(ctxMarker{}); got != "batch-ctx" {
			t.Errorf("fetch %d got a context without the batch's value (%v): the batch must use the context it is given", i, got)
		}
	}
	if got := ff.maxInFlight(); got > 3 {
		t.Errorf("max fetches in flight = %d, want at most Concurrency 3", got)
	}
}

func TestRequestsDoNotShareResults(t *testing.T) {
	ff := &fakeFetcher{}
	f := NewFactory(Config{Fetcher: ff})
	ctx1, ctx2 := MustRequest(t, f), MustRequest(t, f)

	l1, err := Link(ctx1, "a")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := Link(ctx2, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got := ff.callsFor("a"); got != 2 {
		t.Errorf("fetches of a over two requests = %d, want 2 (one per request)", got)
	}
	if l1 == l2 || l1.InstitutionName == l2.InstitutionName {
		t.Errorf("the second request got the first request's link (%q, %q)", l1.InstitutionName, l2.InstitutionName)
	}
	if For(ctx1) == For(ctx2) {
		t.Error("two requests share one *Loaders")
	}
}

func TestMiddlewareAttachesFreshLoaders(t *testing.T) {
	ff := &fakeFetcher{}
	f := NewFactory(Config{Fetcher: ff})
	var seen []*Loaders
	h := f.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l := For(r.Context())
		if l == nil {
			t.Error("For(r.Context()) = nil inside Middleware")
			return
		}
		seen = append(seen, l)
		if _, err := Link(r.Context(), "m"); err != nil {
			t.Errorf("Link: %v", err)
		}
	}))
	for range 2 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/graphql", nil))
	}
	if len(seen) != 2 || seen[0] == seen[1] {
		t.Errorf("Middleware gave requests loaders %p; want a distinct set per request", seen)
	}
	if got := ff.callsFor("m"); got != 2 {
		t.Errorf("fetches of m over two HTTP requests = %d, want 2", got)
	}
}

func TestPanickingFetcher(t *testing.T) {
	var logs syncBuffer
	ff := &fakeFetcher{panics: map[string]any{"p": "secret panic text 4711", "q": fmt.Errorf("wrapped %w", errors.New("secret cause"))}}
	ctx := zerolog.New(&logs).WithContext(MustRequest(t, NewFactory(Config{Fetcher: ff})))

	for _, id := range []string{"p", "q"} {
		l, err := Link(ctx, id)
		if l != nil {
			t.Errorf("Link(%q) = %+v, want nil", id, l)
		}
		var e *apierr.Error
		if !errors.As(err, &e) {
			t.Fatalf("Link(%q) error = %T %v, want *apierr.Error", id, err, err)
		}
		if e.Code != apierr.CodeInternal {
			t.Errorf("Link(%q) code = %s, want %s", id, e.Code, apierr.CodeInternal)
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(e.Message, "secret") {
			t.Errorf("Link(%q) error %q carries the panic value", id, err)
		}
	}
	// Other links of the same request are unaffected.
	links, errs := Links(ctx, []string{"ok", "p"})
	if links[0] == nil || links[0].ID != "ok" || errs[0] != nil {
		t.Errorf("Links[0] = %v, %v; want link ok", links[0], errs[0])
	}
	if errCode(errs[1]) != apierr.CodeInternal {
		t.Errorf("Links[1] code = %s, want %s", errCode(errs[1]), apierr.CodeInternal)
	}
	if !strings.Contains(logs.String(), "panic while loading a link") {
		t.Errorf("panic not logged; logs:\n%s", logs.String())
	}
}

// TestIDsReachFetcherUnchanged: the loader does not validate ids; the
// resolvers do, where an id enters (graph's TestHostileLinkIDs checks that a
// bad id is answered facade.invalid_argument without an upstream call). Each
// id reaches the fetcher as it is, and the fetcher's own refusal comes
// through.
func TestIDsReachFetcherUnchanged(t *testing.T) {
	dots := apierr.InvalidArgument("A link id must not be empty or a dot segment.")
	ff := &fakeFetcher{errs: map[string]error{"": dots, ".": dots, "..": dots}}
	ctx := MustRequest(t, NewFactory(Config{Fetcher: ff}))
	tests := []struct {
		name    string
		id      string
		refused bool // by the fetcher
	}{
		{"empty", "", true},
		{"129 bytes", strings.Repeat("a", upstream.MaxLinkIDLen+1), false},
		{"129 bytes of runes", strings.Repeat("€", 43), false},
		{"newline", "mk_a\nb", false},
		{"NUL", "mk_a\x00", false},
		{"DEL", "mk_a\x7f", false},
		{"dot", ".", true},
		{"dot dot", "..", true},
		{"invalid UTF-8", "mk_\xff", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Link(ctx, tt.id)
			if got := ff.callsFor(tt.id); got != 1 {
				t.Errorf("fetches of %q = %d, want 1", tt.id, got)
			}
			switch {
			case tt.refused && (l != nil || errCode(err) != apierr.CodeInvalidArgument):
				t.Errorf("Link(%q) = %v, %v; want nil, the fetcher's %s", tt.id, l, err, apierr.CodeInvalidArgument)
			case !tt.refused && (err != nil || l == nil || l.ID != tt.id):
				t.Errorf("Link(%q) = %v, %v; want the link", tt.id, l, err)
			}
		})
	}
	// The longest valid id is fetched.
	if _, err := Link(ctx, strings.Repeat("a", upstream.MaxLinkIDLen)); err != nil {
		t.Errorf("Link(128-byte id) = %v, want nil", err)
	}
}

func TestNoLoadersInContext(t *testing.T) {
	ctx := context.Background()
	if l := For(ctx); l != nil {
		t.Fatalf("For(context.Background()) = %v, want nil", l)
	}
	l, err := Link(ctx, "a")
	if l != nil || errCode(err) != apierr.CodeInternal {
		t.Errorf("Link without loaders = %v, %v; want nil, %s", l, err, apierr.CodeInternal)
	}
	links, errs := Links(ctx, []string{"a", "b"})
	if len(links) != 2 || len(errs) != 2 {
		t.Fatalf("Links without loaders = %d links, %d errs; want 2 of each", len(links), len(errs))
	}
	for i := range links {
		if links[i] != nil || errCode(errs[i]) != apierr.CodeInternal {
			t.Errorf("Links[%d] without loaders = %v, %v; want nil, %s", i, links[i], errs[i], apierr.CodeInternal)
		}
	}
}
