package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// The hostile requests of docs/security.md: each must be refused with its
// status and code, without any upstream call, and cheaply (see
// BenchmarkReject; the target is under 1 ms each).

const securitySecret = "security-test-hs256-secret-32-bytes-long"

// hostile is one row of the table.
type hostile struct {
	name   string
	status int
	code   string
	req    func(tb testing.TB) *http.Request
}

func hostileRequests(tb testing.TB) []hostile {
	user := "Bearer " + mustSign(tb, jwt.SigningMethodHS256, []byte(securitySecret), jwt.MapClaims{
		"sub": "alice", "link_ids": []string{sandbox.LinkSeed}, "exp": time.Now().Add(time.Hour).Unix(),
	})
	post := func(body string, header ...string) func(testing.TB) *http.Request {
		return func(testing.TB) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", user)
			for i := 0; i+1 < len(header); i += 2 {
				r.Header.Set(header[i], header[i+1])
			}
			return r
		}
	}
	query := func(q string, header ...string) func(testing.TB) *http.Request {
		b, _ := json.Marshal(map[string]string{"query": q})
		return post(string(b), header...)
	}
	// Deeper than any valid selection (the schema's deepest is 5): refused
	// before validation would spend time on it.
	deep := strings.Repeat("{ a ", 50) + strings.Repeat("}", 50)
	var aliases strings.Builder
	aliases.WriteString("{")
	for i := range 10000 {
		aliases.WriteString(" a" + strconv.Itoa(i) + `: link(id: "` + sandbox.LinkSeed + `") { id }`)
	}
	aliases.WriteString(" }")
	bigQuery := "{ link(id: \"" + sandbox.LinkSeed + "\") { id } }" + strings.Repeat(" ", 1<<20)
	tokens := "{" + strings.Repeat(" __typename", 100000) + " }"
	ids := make([]string, 101)
	for i := range ids {
		ids[i] = `"` + sandbox.LinkSeed + `"`
	}
	batch := "[" + strings.TrimSuffix(strings.Repeat(`{"query":"{ __typename }"},`, 1000), ",") + "]"
	forged := "Bearer " + mustSign(tb, jwt.SigningMethodHS256, []byte("not-the-secret-not-the-secret-not-the!"), jwt.MapClaims{
		"sub": "mallory", "link_ids": []string{sandbox.LinkSeed}, "exp": time.Now().Add(time.Hour).Unix(),
	})
	expired := "Bearer " + mustSign(tb, jwt.SigningMethodHS256, []byte(securitySecret), jwt.MapClaims{
		"sub": "alice", "link_ids": []string{sandbox.LinkSeed}, "exp": time.Now().Add(-time.Hour).Unix(),
	})
	none := "Bearer " + mustSign(tb, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{
		"sub": "mallory", "link_ids": []string{sandbox.LinkHousehold}, "exp": time.Now().Add(time.Hour).Unix(),
	})
	seed := `{"query":"{ link(id: \"` + sandbox.LinkSeed + `\") { id } }"}`
	return []hostile{
		{"deep query", http.StatusBadRequest, apierr.CodeQueryTooDeep, query(deep)},
		{"10,000 aliases of one link", http.StatusBadRequest, apierr.CodeQueryTooLarge, query(aliases.String())},
		{"1 MiB query", http.StatusRequestEntityTooLarge, apierr.CodeQueryTooLarge, query(bigQuery)},
		{"100,000 tokens", http.StatusRequestEntityTooLarge, apierr.CodeQueryTooLarge, query(tokens)},
		{"introspection in production", http.StatusOK, apierr.CodeIntrospectionDisabled, query(`{ __schema { types { name } } }`)},
		{"CSRF-style simple request", http.StatusBadRequest, apierr.CodeCSRFRefused, post(seed, "Content-Type", "text/plain")},
		{"forged JWT", http.StatusUnauthorized, apierr.CodeUnauthenticated, post(seed, "Authorization", forged)},
		{"expired JWT", http.StatusUnauthorized, apierr.CodeUnauthenticated, post(seed, "Authorization", expired)},
		{"alg: none", http.StatusUnauthorized, apierr.CodeUnauthenticated, post(seed, "Authorization", none)},
		{"another user's link", http.StatusOK, apierr.CodeForbidden, query(`{ link(id: "` + sandbox.LinkHousehold + `") { id } }`)},
		{"path-traversal link id", http.StatusOK, apierr.CodeForbidden, query(`{ link(id: "../../auth/token") { id } }`)},
		{"oversized links(ids:)", http.StatusUnprocessableEntity, apierr.CodeTooManyLinkIDs, query(`{ links(ids: [` + strings.Join(ids, ",") + `]) { id } }`)},
		{"batched array of 1,000 operations", http.StatusBadRequest, apierr.CodeBatchingDisabled, post(batch)},
	}
}

// securityEnv is the production handler chain with end-user JWT auth, over a
// sandbox that counts calls.
func securityEnv(tb testing.TB) (http.Handler, *sandbox.Server) {
	tb.Helper()
	sbx := sandbox.New(sandbox.Options{})
	upstreamURL := startUpstream(tb, sbx)
	env := map[string]string{
		"MKGRAPH_ENV": "production", "MONEYKIT_BASE_URL": upstreamURL,
		"MONEYKIT_CLIENT_ID": sandbox.DefaultClientID, "MONEYKIT_CLIENT_SECRET": sandbox.DefaultClientSecret,
		"MKGRAPH_JWT_HS256_SECRET": securitySecret, "MKGRAPH_USER_RATE_LIMIT": "0",
	}
	c, err := parseConfig("mkgraph", nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		tb.Fatal(err)
	}
	hc := &http.Client{}
	tb.Cleanup(hc.CloseIdleConnections)
	client, err := upstream.New(upstream.Config{BaseURL: upstreamURL, ClientID: c.ClientID, ClientSecret: c.ClientSecret, HTTPClient: hc})
	if err != nil {
		tb.Fatal(err)
	}
	authn, err := newAuthenticator(tb.Context(), c, false, zerolog.Nop())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(authn.Close)
	h, err := newHandler(c, zerolog.Nop(), client, client.Ready, authn, nil, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return h, sbx
}

func TestHostileRequests(t *testing.T) {
	h, sbx := securityEnv(t)
	for _, hr := range hostileRequests(t) {
		t.Run(hr.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, hr.req(t))
			var doc struct {
				Errors []struct {
					Extensions map[string]any `json:"extensions"`
				} `json:"errors"`
			}
			json.Unmarshal(rec.Body.Bytes(), &doc)
			if rec.Code != hr.status || len(doc.Errors) == 0 || doc.Errors[0].Extensions["code"] != hr.code {
				t.Errorf("HTTP %d %.300s; want %d with code %s", rec.Code, rec.Body, hr.status, hr.code)
			}
			if n := sbx.IdentityCalls(); n != 0 {
				t.Errorf("%d upstream identity calls, want 0", n)
			}
		})
	}
}

// BenchmarkReject is the time to refuse each hostile request, the last
// column of docs/security.md.
func BenchmarkReject(b *testing.B) {
	h, _ := securityEnv(b)
	for _, hr := range hostileRequests(b) {
		b.Run(strings.NewReplacer(" ", "_", ",", "", "'", "", ":", "", "(", "", ")", "").Replace(hr.name), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				req := hr.req(b)
				b.StartTimer()
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != hr.status {
					b.Fatalf("HTTP %d %.200s", rec.Code, rec.Body)
				}
			}
		})
	}
}
