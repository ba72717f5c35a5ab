package graph_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
)

const refreshMutation = `mutation($id: ID!) { refreshIdentity(linkId: $id) { linkId requestedAt status { refreshedAt lastAttemptedAt } } }`

func TestRefreshIdentity(t *testing.T) {
	var calls atomic.Int64
	s := newSubsServer(t, subsOptions{refresh: func(ctx context.Context, id string) (*upstream.Link, error) {
		calls.Add(1)
		if id == "mk_limited" {
			return nil, &apierr.Error{Code: apierr.CodeRateLimitExceeded, Status: 429, Message: "Rate limit exceeded.", RetryAfter: 30 * time.Second, HasRetryAfter: true}
		}
		return &upstream.Link{LinkID: id, Products: map[string]*upstream.ProductStatus{"identity": {
			RefreshedAt: upstream.Timestamp{Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}, LastAttemptedAt: upstream.Timestamp{Time: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)}}}}, nil
	}})
	post := func(auth, id string) map[string]any {
		body, _ := json.Marshal(map[string]any{"query": refreshMutation, "variables": map[string]any{"id": id}})
		req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return out
	}
	before := time.Now().UTC().Add(-time.Second)
	out := post("Bearer user", okLink)
	r, _ := out["data"].(map[string]any)["refreshIdentity"].(map[string]any)
	if r == nil || r["linkId"] != okLink {
		t.Fatalf("%v", out)
	}
	at, err := time.Parse(time.RFC3339Nano, r["requestedAt"].(string))
	if err != nil || at.Before(before) || at.After(time.Now().Add(time.Second)) {
		t.Fatalf("requestedAt %v", r["requestedAt"])
	}
	if st := r["status"].(map[string]any); st["refreshedAt"] != "2024-01-02T03:04:05Z" || st["lastAttemptedAt"] != "2024-06-01T00:00:00Z" {
		t.Fatalf("status %v", st)
	}
	for _, c := range []struct{ auth, id, code string }{
		{"Bearer user", otherLink, apierr.CodeForbidden},
		{"Bearer user", "..", apierr.CodeInvalidArgument},
		{"Bearer backend", "mk_limited", apierr.CodeRateLimitExceeded},
	} {
		before := calls.Load()
		out := post(c.auth, c.id)
		errs, _ := out["errors"].([]any)
		if len(errs) != 1 {
			t.Fatalf("%s: %v", c.id, out)
		}
		e := errs[0].(map[string]any)["extensions"].(map[string]any)
		if e["code"] != c.code {
			t.Fatalf("%s: %v", c.id, e)
		}
		if c.code == apierr.CodeRateLimitExceeded {
			if e["retryAfter"] != float64(30) {
				t.Fatalf("retryAfter %v", e["retryAfter"])
			}
		} else if calls.Load() != before {
			t.Fatalf("%s: a refusal called upstream", c.id)
		}
	}
	// Over GET: 405.
	req, _ := http.NewRequest(http.MethodGet, s.url+"/graphql?query="+strings.ReplaceAll(`mutation { refreshIdentity(linkId: "`+okLink+`") { linkId } }`, " ", "+"), nil)
	req.Header.Set("Authorization", "Bearer user")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET mutation: %d", resp.StatusCode)
	}
}
