package upstream_test

import (
	"context"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
)

// observed is a Call without its Duration, for comparison.
type observed struct {
	Endpoint string
	Status   int
	Code     string
}

// recordCalls returns an Observer and a function returning what it saw.
func recordCalls(t *testing.T, wantValue string) (func(context.Context, upstream.Call), func() []observed) {
	var mu sync.Mutex
	var calls []observed
	observe := func(ctx context.Context, c upstream.Call) {
		if got, _ := ctx.Value(ctxKey{}).(string); got != wantValue {
			t.Errorf("Observer got a context with value %q, want the caller's context (%q)", got, wantValue)
		}
		if c.Duration <= 0 {
			t.Errorf("Observer got Call %+v with Duration %v, want > 0", c, c.Duration)
		}
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, observed{c.Endpoint, c.Status, c.Code})
	}
	return observe, func() []observed {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(calls)
	}
}

type ctxKey struct{}

func TestObserver(t *testing.T) {
	tokenOK := observed{upstream.EndpointToken, http.StatusCreated, ""}
	tests := []struct {
		name     string
		identity func(http.ResponseWriter, *http.Request, int)
		token    func(http.ResponseWriter, *http.Request, int)
		linkID   string
		want     []observed
	}{
		{
			name: "success",
			want: []observed{tokenOK, {upstream.EndpointIdentity, 200, ""}},
		},
		{
			name: "expired token retried",
			identity: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					writeJSON(w, 401, apiErrorJSON(apierr.CodeExpiredAccessToken, "Access token expired", docsAuth, ""))
					return
				}
				writeJSON(w, 200, minimalIdentity)
			},
			want: []observed{tokenOK, {upstream.EndpointIdentity, 401, apierr.CodeExpiredAccessToken}, tokenOK, {upstream.EndpointIdentity, 200, ""}},
		},
		{
			name: "404",
			identity: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 404, apiErrorJSON("link_error.not_found", "Link not found.", docsLinkErrors, ""))
			},
			want: []observed{tokenOK, {upstream.EndpointIdentity, 404, "link_error.not_found"}},
		},
		{
			name: "503",
			identity: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 503, `{}`)
			},
			// Retried twice: each attempt is observed.
			want: []observed{tokenOK, {upstream.EndpointIdentity, 503, apierr.CodeUpstreamUnavailable},
				{upstream.EndpointIdentity, 503, apierr.CodeUpstreamUnavailable}, {upstream.EndpointIdentity, 503, apierr.CodeUpstreamUnavailable}},
		},
		{
			name: "200 HTML",
			identity: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Content-Type", "text/html")
				w.Write([]byte("<html></html>"))
			},
			want: []observed{tokenOK, {upstream.EndpointIdentity, 200, apierr.CodeUpstreamBadResponse}},
		},
		{
			name: "200 truncated JSON",
			identity: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 200, `{"accounts":[`)
			},
			want: []observed{tokenOK, {upstream.EndpointIdentity, 200, apierr.CodeUpstreamBadResponse}},
		},
		{
			name: "token without access_token",
			token: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 201, `{"token_type":"bearer"}`)
			},
			want: []observed{{upstream.EndpointToken, 201, apierr.CodeUpstreamBadResponse}},
		},
		{
			name: "token refused",
			token: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 401, apiErrorJSON(apierr.CodeUnauthorized, "Invalid client credentials.", docsAuth, ""))
			},
			want: []observed{{upstream.EndpointToken, 401, apierr.CodeUnauthorized}},
		},
		{
			name:   "invalid link id",
			linkID: "..",
			want:   nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeUpstream(t, fakeOptions{identity: tt.identity, token: tt.token})
			observe, calls := recordCalls(t, "caller")
			c := MustNewClient(t, f.URL, upstream.Config{Observer: observe})
			linkID := cmpOr(tt.linkID, "mk_test")
			c.GetIdentity(context.WithValue(t.Context(), ctxKey{}, "caller"), linkID)
			if diff := cmp.Diff(tt.want, calls()); diff != "" {
				t.Errorf("GetIdentity(ctx, %q) observed calls mismatch (-want +got):\n%s", linkID, diff)
			}
		})
	}
}

func TestObserverConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	observe, calls := recordCalls(t, "caller")
	c := MustNewClient(t, "http://"+addr, upstream.Config{Observer: observe})
	c.GetIdentity(context.WithValue(t.Context(), ctxKey{}, "caller"), "mk_test")
	want := []observed{{upstream.EndpointToken, 0, apierr.CodeUpstreamUnavailable}}
	if diff := cmp.Diff(want, calls()); diff != "" {
		t.Errorf("observed calls mismatch (-want +got):\n%s", diff)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
