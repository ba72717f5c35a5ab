package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// Wire shapes of the identity answer, with exactly the reference's field
// names: strict decoding into them catches a misspelt fixture field.
type (
	identityResponse struct {
		Accounts []account `json:"accounts"`
		Link     link      `json:"link"`
	}
	account struct {
		AccountID   string   `json:"account_id"`
		AccountType string   `json:"account_type"`
		Name        string   `json:"name"`
		Nickname    *string  `json:"nickname"`
		AccountMask *string  `json:"account_mask"`
		Balances    balances `json:"balances"`
		OriginalID  *string  `json:"original_id"`
		Closed      *bool    `json:"closed"`
		Owners      []owner  `json:"owners"`
	}
	balances struct {
		Currency    *string      `json:"currency"`
		Available   *json.Number `json:"available"`
		Current     *json.Number `json:"current"`
		Limit       *json.Number `json:"limit"`
		BalanceDate *string      `json:"balance_date"`
	}
	owner struct {
		Names        []string  `json:"names"`
		Addresses    []address `json:"addresses"`
		PhoneNumbers []phone   `json:"phone_numbers"`
		Emails       []email   `json:"emails"`
	}
	address struct {
		City       *string `json:"city"`
		Country    *string `json:"country"`
		PostalCode *string `json:"postal_code"`
		Region     *string `json:"region"`
		Street     *string `json:"street"`
		Primary    *bool   `json:"primary"`
	}
	phone struct {
		Number  string `json:"number"`
		Primary *bool  `json:"primary"`
		Type    string `json:"type"`
	}
	email struct {
		Address string `json:"address"`
		Primary *bool  `json:"primary"`
	}
	link struct {
		LinkID            string             `json:"link_id"`
		InstitutionID     string             `json:"institution_id"`
		InstitutionName   string             `json:"institution_name"`
		InstitutionAvatar *string            `json:"institution_avatar"`
		State             string             `json:"state"`
		ErrorCode         *string            `json:"error_code"`
		Provider          string             `json:"provider"`
		LinkTags          []string           `json:"link_tags"`
		Webhook           *string            `json:"webhook"`
		Products          map[string]product `json:"products"`
		AvailableProducts []string           `json:"available_products"`
	}
	product struct {
		RefreshedAt     *string `json:"refreshed_at"`
		LastAttemptedAt *string `json:"last_attempted_at"`
		ErrorCode       *string `json:"error_code"`
		ErrorMessage    *string `json:"error_message"`
		Unavailable     *string `json:"unavailable"`
		LastEnriched    *string `json:"last_enriched"`
	}
	apiError struct {
		ErrorCode        string `json:"error_code"`
		ErrorMessage     string `json:"error_message"`
		DocumentationURL string `json:"documentation_url"`
		LinkErrorCode    string `json:"link_error_code"`
	}
	tokenResponse struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
)

func ptr[T any](v T) *T { return &v }

// start serves a new sandbox for the duration of the test.
func start(t *testing.T, opts sandbox.Options) (*sandbox.Server, string) {
	t.Helper()
	s := sandbox.New(opts)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL
}

// clientHeaders authorizes identity calls with the default credentials.
func clientHeaders() http.Header {
	return http.Header{"X-Client-Id": {sandbox.DefaultClientID}, "X-Client-Secret": {sandbox.DefaultClientSecret}}
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, method, rawURL string, header http.Header, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, rawURL, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func identityURL(base, linkID, query string) string {
	u := base + "/links/" + url.PathEscape(linkID) + "/identity"
	if query != "" {
		u += "?" + query
	}
	return u
}

// getIdentity calls GET /links/{linkID}/identity.
func getIdentity(t *testing.T, base, linkID, query string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	return do(t, http.MethodGet, identityURL(base, linkID, query), header, nil)
}

func postToken(t *testing.T, base string, form url.Values, header http.Header) (*http.Response, []byte) {
	t.Helper()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for k, v := range header {
		h[k] = v
	}
	return do(t, http.MethodPost, base+"/auth/token", h, strings.NewReader(form.Encode()))
}

func defaultForm() url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {sandbox.DefaultClientID}, "client_secret": {sandbox.DefaultClientSecret}}
}

// mustToken returns a fresh access token from the default credentials.
func mustToken(t *testing.T, base string) string {
	t.Helper()
	res, body := postToken(t, base, defaultForm(), nil)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST /auth/token: status %d, body %s", res.StatusCode, body)
	}
	var tok tokenResponse
	mustDecode(t, body, &tok, true)
	return tok.AccessToken
}

func mustDecode(t *testing.T, body []byte, v any, strict bool) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %.300s: %v", body, err)
	}
}

// checkError checks a JSON error answer.
func checkError(t *testing.T, res *http.Response, body []byte, wantStatus int, wantCode string) apiError {
	t.Helper()
	if res.StatusCode != wantStatus {
		t.Errorf("status = %d, want %d (body %s)", res.StatusCode, wantStatus, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var e apiError
	mustDecode(t, body, &e, true)
	if e.ErrorCode != wantCode {
		t.Errorf("error_code = %q, want %q", e.ErrorCode, wantCode)
	}
	if e.ErrorMessage == "" || !strings.HasPrefix(e.DocumentationURL, "https://docs.moneykit.com/") {
		t.Errorf("error body %s lacks a message or documentation_url", body)
	}
	return e
}

func TestLinks(t *testing.T) {
	want := []struct {
		id     string
		status int
		fault  bool
	}{
		{sandbox.LinkSeed, 200, false}, {sandbox.LinkHousehold, 200, false}, {sandbox.LinkSparse, 200, false},
		{sandbox.LinkInternational, 200, false}, {sandbox.LinkNovel, 200, false}, {sandbox.LinkLarge, 200, false},
		{sandbox.LinkUnauthorized, 401, false}, {sandbox.LinkForbidden, 403, false}, {sandbox.LinkDeleted, 410, false},
		{sandbox.LinkBadState, 422, false}, {sandbox.LinkRateLimited, 429, false}, {sandbox.LinkServerError, 500, false},
		{sandbox.LinkUnavailable, 503, false},
		{sandbox.LinkFault502, 502, true}, {sandbox.LinkFault504, 504, true}, {sandbox.LinkFaultHTML, 200, true},
		{sandbox.LinkFaultTruncated, 200, true}, {sandbox.LinkFaultOversized, 200, true}, {sandbox.LinkFaultDrip, 200, true},
		{sandbox.LinkFaultReset, 0, true}, {sandbox.LinkFaultHang, 0, true}, {sandbox.LinkFaultSlow, 200, true},
		{sandbox.LinkRateLimitedDate, 429, true}, {sandbox.LinkRateLimitedShort, 429, true},
	}
	got := sandbox.Links()
	if len(got) != len(want) {
		t.Fatalf("Links() has %d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].ID != w.id || got[i].Status != w.status || got[i].Fault != w.fault || got[i].Description == "" {
			t.Errorf("Links()[%d] = %+v, want id %s, status %d, fault %t and a description", i, got[i], w.id, w.status, w.fault)
		}
	}
}

func TestToken(t *testing.T) {
	form := defaultForm()
	withSecret := func(secret string) url.Values {
		f := defaultForm()
		f.Set("client_secret", secret)
		return f
	}
	basic := func(id, secret string) http.Header {
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		req.SetBasicAuth(id, secret)
		return req.Header
	}
	tests := []struct {
		name   string
		form   url.Values
		header http.Header
		want   int
	}{
		{"form credentials", form, nil, http.StatusCreated},
		{"form credentials with scope", url.Values{"scope": {"identity"}, "grant_type": {"client_credentials"}, "client_id": form["client_id"], "client_secret": form["client_secret"]}, nil, http.StatusCreated},
		{"basic auth", url.Values{"grant_type": {"client_credentials"}}, basic(sandbox.DefaultClientID, sandbox.DefaultClientSecret), http.StatusCreated},
		{"wrong secret", withSecret("nope"), nil, http.StatusUnauthorized},
		{"secret prefix", withSecret(sandbox.DefaultClientSecret[:5]), nil, http.StatusUnauthorized},
		{"wrong basic auth", url.Values{"grant_type": {"client_credentials"}}, basic(sandbox.DefaultClientID, "nope"), http.StatusUnauthorized},
		{"no credentials", url.Values{"grant_type": {"client_credentials"}}, nil, http.StatusUnauthorized},
		{"no grant_type", url.Values{"client_id": form["client_id"], "client_secret": form["client_secret"]}, nil, http.StatusUnauthorized},
		{"wrong grant_type", url.Values{"grant_type": {"password"}, "client_id": form["client_id"], "client_secret": form["client_secret"]}, nil, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, base := start(t, sandbox.Options{})
			res, body := postToken(t, base, tt.form, tt.header)
			if s.TokenCalls() != 1 {
				t.Errorf("TokenCalls() = %d, want 1", s.TokenCalls())
			}
			if tt.want != http.StatusCreated {
				checkError(t, res, body, tt.want, "api_error.auth.unauthorized")
				return
			}
			if res.StatusCode != tt.want || res.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, Content-Type %q, want %d application/json", res.StatusCode, res.Header.Get("Content-Type"), tt.want)
			}
			var tok tokenResponse
			mustDecode(t, body, &tok, true)
			if len(tok.AccessToken) < 32 || tok.TokenType != "bearer" || tok.ExpiresIn != 3600 {
				t.Errorf("token = %+v, want a 32+ char bearer token expiring in 3600", tok)
			}
		})
	}
}

func TestTokenMethodNotAllowed(t *testing.T) {
	s, base := start(t, sandbox.Options{})
	res, body := do(t, http.MethodGet, base+"/auth/token", nil, nil)
	checkError(t, res, body, http.StatusMethodNotAllowed, "api_error.method_not_allowed")
	if s.TokenCalls() != 0 {
		t.Errorf("TokenCalls() = %d after a GET, want 0", s.TokenCalls())
	}
}

func TestTokensAreUnique(t *testing.T) {
	_, base := start(t, sandbox.Options{})
	if a, b := mustToken(t, base), mustToken(t, base); a == b {
		t.Errorf("two token calls returned the same token %q", a)
	}
}

func TestCustomCredentialsAndTTL(t *testing.T) {
	_, base := start(t, sandbox.Options{ClientID: "id", ClientSecret: "secret", TokenTTL: 90 * time.Second})
	res, body := postToken(t, base, defaultForm(), nil)
	checkError(t, res, body, http.StatusUnauthorized, "api_error.auth.unauthorized")

	res, body = postToken(t, base, url.Values{"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"secret"}}, nil)
	var tok tokenResponse
	mustDecode(t, body, &tok, true)
	if res.StatusCode != http.StatusCreated || tok.ExpiresIn != 90 {
		t.Errorf("status %d, expires_in %d, want 201 and 90", res.StatusCode, tok.ExpiresIn)
	}
	res, _ = getIdentity(t, base, sandbox.LinkSeed, "", http.Header{"X-Client-Id": {"id"}, "X-Client-Secret": {"secret"}})
	if res.StatusCode != http.StatusOK {
		t.Errorf("identity with custom client headers: status %d, want 200", res.StatusCode)
	}
}

func TestIdentityFixtures(t *testing.T) {
	tests := []struct {
		id           string
		wantAccounts int
		wantDigits   []string // exact number literals the body must contain
	}{
		{sandbox.LinkSeed, 1, []string{`"available":340.12`, `"current":445.89`, `"limit":500`}},
		{sandbox.LinkHousehold, 3, []string{`"available":15250.00`, `"current":1212.34`, `"limit":8000`}},
		{sandbox.LinkSparse, 2, []string{`"current":1023.5`}},
		{sandbox.LinkInternational, 3, []string{`12345678901234567.89`, `"available":0.10`, `"current":1523400`}},
		{sandbox.LinkNovel, 1, []string{`"available":4200.18`}},
		{sandbox.LinkLarge, 500, []string{`"account_id":"acc_large_0001"`, `"account_id":"acc_large_0500"`}},
	}
	_, base := start(t, sandbox.Options{})
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			res, body := getIdentity(t, base, tt.id, "", clientHeaders())
			if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, Content-Type %q, want 200 application/json; body %.300s", res.StatusCode, res.Header.Get("Content-Type"), body)
			}
			var got identityResponse
			// LinkNovel carries fields the reference does not know, on purpose.
			mustDecode(t, body, &got, tt.id != sandbox.LinkNovel)
			if len(got.Accounts) != tt.wantAccounts {
				t.Errorf("%d accounts, want %d", len(got.Accounts), tt.wantAccounts)
			}
			if got.Link.LinkID != tt.id {
				t.Errorf("link.link_id = %q, want %q", got.Link.LinkID, tt.id)
			}
			seen := map[string]bool{}
			for _, a := range got.Accounts {
				if a.AccountID == "" || seen[a.AccountID] || a.AccountType == "" || a.Name == "" {
					t.Errorf("account %+v: want a unique account_id, an account_type and a name", a)
				}
				seen[a.AccountID] = true
			}
			for _, d := range tt.wantDigits {
				if !bytes.Contains(body, []byte(d)) {
					t.Errorf("body lacks %s", d)
				}
			}
			_, again := getIdentity(t, base, tt.id, "", clientHeaders())
			if !bytes.Equal(body, again) {
				t.Error("second answer differs from the first")
			}
		})
	}
}

func TestSeedMatchesReference(t *testing.T) {
	_, base := start(t, sandbox.Options{})
	_, body := getIdentity(t, base, sandbox.LinkSeed, "", clientHeaders())
	var got identityResponse
	mustDecode(t, body, &got, true)
	want := account{
		AccountID: "acc_6Tef269B6ZArSVpYrxtjBV", AccountType: "depository.checking", Name: "Premier Checking",
		Nickname: ptr("John's Account"), AccountMask: ptr("3748"), Closed: ptr(true),
		Balances: balances{Currency: ptr("USD"), Available: ptr(json.Number("340.12")), Current: ptr(json.Number("445.89")),
			Limit: ptr(json.Number("500")), BalanceDate: ptr("2023-02-16T09:14:11Z")},
		Owners: []owner{{
			Names: []string{"John Smith"},
			Addresses: []address{{City: ptr("Boston"), Country: ptr("US"), PostalCode: ptr("02108"), Region: ptr("MA"),
				Street: ptr("12 Park Street"), Primary: ptr(true)}},
			PhoneNumbers: []phone{{Number: "6175551212", Primary: ptr(true), Type: "home"}},
			Emails:       []email{{Address: "john.smith@example.com", Primary: ptr(true)}},
		}},
	}
	if diff := cmp.Diff([]account{want}, got.Accounts); diff != "" {
		t.Errorf("seed accounts mismatch (-want +got):\n%s", diff)
	}
	l := got.Link
	if l.InstitutionID != "chase" || l.InstitutionName != "Chase" || l.State != "connected" || l.Provider != "akoya" || l.ErrorCode != nil ||
		!cmp.Equal(l.LinkTags, []string{"smoke_test", "user_type:admin"}) || !cmp.Equal(l.AvailableProducts, []string{"account_numbers"}) {
		t.Errorf("seed link = %+v, want the reference's", l)
	}
	if len(l.Products) != 6 || *l.Products["transactions"].LastEnriched != "2025-08-20T00:01:21.281Z" {
		t.Errorf("seed products = %+v, want six with transactions.last_enriched", l.Products)
	}
}

func TestNovelAndSparseShapes(t *testing.T) {
	_, base := start(t, sandbox.Options{})
	_, body := getIdentity(t, base, sandbox.LinkNovel, "", clientHeaders())
	var novel identityResponse
	mustDecode(t, body, &novel, false)
	if novel.Link.State != "reconnecting" || novel.Link.Products["liabilities"] == (product{}) ||
		!cmp.Equal(novel.Link.AvailableProducts, []string{"identity", "liabilities", "transactions"}) ||
		!bytes.Contains(body, []byte(`"type":"fax"`)) || !bytes.Contains(body, []byte(`"account_subtype_v2"`)) {
		t.Errorf("novel fixture lacks its unknown values: %s", body)
	}

	_, body = getIdentity(t, base, sandbox.LinkSparse, "", clientHeaders())
	var sparse identityResponse
	mustDecode(t, body, &sparse, true)
	a := sparse.Accounts[0]
	if a.Nickname != nil || a.AccountMask != nil || a.Closed != nil || a.Balances.Currency != nil || len(a.Owners[1].Names) != 0 ||
		sparse.Link.InstitutionAvatar != nil || sparse.Link.Webhook != nil || sparse.Link.LinkTags != nil || len(sparse.Link.Products) != 2 {
		t.Errorf("sparse fixture is not sparse: %s", body)
	}
	for _, key := range []string{`"nickname"`, `"link_tags"`, `"original_id"`} {
		if bytes.Contains(body, []byte(key)) {
			t.Errorf("sparse body has key %s", key)
		}
	}
}

func TestIdentityMagicErrors(t *testing.T) {
	tests := []struct {
		id            string
		status        int
		code, message string
		linkErrorCode string
	}{
		{sandbox.LinkUnauthorized, 401, "link_error.unauthorized_access", "Unauthorized link access.", ""},
		{sandbox.LinkForbidden, 403, "link_error.forbidden_action", "Accounts access not permitted", ""},
		{sandbox.LinkDeleted, 410, "link_error.deleted", "This link was deleted at some earlier time.", ""},
		{sandbox.LinkBadState, 422, "link_error.bad_state", "", "auth_expired"},
		{sandbox.LinkRateLimited, 429, "api_error.rate_limit_exceeded", "Rate limit exceeded. Use the value of the Retry-After header as guidance for when to retry the request.", ""},
		{sandbox.LinkServerError, 500, "api_error.internal", "", ""},
		{"mk_no_such_link", 404, "link_error.not_found", "Link not found.", ""},
	}
	_, base := start(t, sandbox.Options{})
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			res, body := getIdentity(t, base, tt.id, "", clientHeaders())
			e := checkError(t, res, body, tt.status, tt.code)
			if tt.message != "" && e.ErrorMessage != tt.message {
				t.Errorf("error_message = %q, want %q", e.ErrorMessage, tt.message)
			}
			if e.LinkErrorCode != tt.linkErrorCode {
				t.Errorf("link_error_code = %q, want %q", e.LinkErrorCode, tt.linkErrorCode)
			}
			wantRetry := ""
			if tt.status == http.StatusTooManyRequests {
				wantRetry = "30"
			}
			if got := res.Header.Get("Retry-After"); got != wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, wantRetry)
			}
		})
	}
	t.Run(sandbox.LinkUnavailable, func(t *testing.T) {
		res, body := getIdentity(t, base, sandbox.LinkUnavailable, "", clientHeaders())
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Content-Type") != "text/html" ||
			!bytes.HasPrefix(body, []byte("<html>")) || !bytes.Contains(body, []byte("Service Unavailable")) {
			t.Errorf("status %d, Content-Type %q, body %q; want 503 text/html", res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	})
}

func TestIdentityAuth(t *testing.T) {
	start0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var elapsed atomic.Int64
	now := func() time.Time { return start0.Add(time.Duration(elapsed.Load())) }
	_, base := start(t, sandbox.Options{Now: now})
	token := mustToken(t, base)

	tests := []struct {
		name    string
		header  http.Header
		advance time.Duration // clock time passed since the token was issued
		want    int
		code    string
	}{
		{"client headers", clientHeaders(), 0, 200, ""},
		{"token", bearer(token), 0, 200, ""},
		{"token, lower-case scheme", http.Header{"Authorization": {"bearer " + token}}, 0, 200, ""},
		{"token just before expiry", bearer(token), time.Hour - time.Second, 200, ""},
		{"expired token", bearer(token), time.Hour, 401, "api_error.auth.expired_access_token"},
		{"expired token, valid client headers", http.Header{"Authorization": {"Bearer " + token}, "X-Client-Id": clientHeaders()["X-Client-Id"], "X-Client-Secret": clientHeaders()["X-Client-Secret"]}, 2 * time.Hour, 401, "api_error.auth.expired_access_token"},
		{"no credentials", nil, 0, 401, "api_error.auth.unauthorized"},
		{"unknown token", bearer("not-a-token"), 0, 401, "api_error.auth.unauthorized"},
		{"empty bearer", http.Header{"Authorization": {"Bearer "}}, 0, 401, "api_error.auth.unauthorized"},
		{"token as basic", http.Header{"Authorization": {"Basic " + token}}, 0, 401, "api_error.auth.unauthorized"},
		{"wrong client secret", http.Header{"X-Client-Id": {sandbox.DefaultClientID}, "X-Client-Secret": {"nope"}}, 0, 401, "api_error.auth.unauthorized"},
		{"client id only", http.Header{"X-Client-Id": {sandbox.DefaultClientID}}, 0, 401, "api_error.auth.unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			elapsed.Store(int64(tt.advance))
			res, body := getIdentity(t, base, sandbox.LinkSeed, "", tt.header)
			if tt.want == http.StatusOK {
				if res.StatusCode != tt.want {
					t.Errorf("status %d, want 200; body %s", res.StatusCode, body)
				}
				return
			}
			checkError(t, res, body, tt.want, tt.code)
		})
	}
}

func TestAccountIDsFilter(t *testing.T) {
	const (
		checking = "acc_2GqW7xJz4Lm9PdRt8VbN3K"
		savings  = "acc_7YhK2mQ9sXc4VnB8LpT6Wd"
		card     = "acc_4RzN8kF3pJw6TqD2HcX9Ys"
	)
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{checking, savings, card}},
		{"account_ids=" + card, []string{card}},
		{"account_ids=" + card + "&account_ids=" + checking, []string{checking, card}},
		{"account_ids=acc_unknown&account_ids=" + savings, []string{savings}},
		{"account_ids=acc_unknown", []string{}},
	}
	s, base := start(t, sandbox.Options{})
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			_, body := getIdentity(t, base, sandbox.LinkHousehold, tt.query, clientHeaders())
			var got identityResponse
			mustDecode(t, body, &got, true)
			ids := []string{}
			for _, a := range got.Accounts {
				ids = append(ids, a.AccountID)
			}
			if diff := cmp.Diff(tt.want, ids); diff != "" {
				t.Errorf("account ids mismatch (-want +got):\n%s", diff)
			}
			if got.Link.LinkID != sandbox.LinkHousehold {
				t.Errorf("link.link_id = %q", got.Link.LinkID)
			}
			wantQuery, _ := url.ParseQuery(tt.query)
			if diff := cmp.Diff(wantQuery, s.LastIdentityQuery(sandbox.LinkHousehold)); diff != "" {
				t.Errorf("LastIdentityQuery mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRouting(t *testing.T) {
	tests := []struct {
		name, method, path string
		countedFor         string // link id the call must be counted for, if any
		status             int
		code               string
	}{
		{"escaped slashes stay in the id", http.MethodGet, "/links/mk%2F..%2Fauth%2Ftoken/identity", "mk/../auth/token", 404, "link_error.not_found"},
		{"escaped magic id", http.MethodGet, "/links/mk_sandbox_error_%34%31%30/identity", sandbox.LinkDeleted, 410, "link_error.deleted"},
		{"post to identity", http.MethodPost, "/links/" + sandbox.LinkSeed + "/identity", sandbox.LinkSeed, 405, "api_error.method_not_allowed"},
		{"unknown path", http.MethodGet, "/links/" + sandbox.LinkSeed, "", 404, "api_error.not_found"},
		{"extra segment", http.MethodGet, "/links/a/b/identity", "", 404, "api_error.not_found"},
		{"empty id", http.MethodGet, "/links//identity", "", 404, "api_error.not_found"},
		{"trailing slash", http.MethodGet, "/links/" + sandbox.LinkSeed + "/identity/", "", 404, "api_error.not_found"},
		{"root", http.MethodGet, "/", "", 404, "api_error.not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, base := start(t, sandbox.Options{})
			res, body := do(t, tt.method, base+tt.path, clientHeaders(), nil)
			checkError(t, res, body, tt.status, tt.code)
			wantCalls := 0
			if tt.countedFor != "" {
				wantCalls = 1
				if got := s.IdentityCallsFor(tt.countedFor); got != 1 {
					t.Errorf("IdentityCallsFor(%q) = %d, want 1", tt.countedFor, got)
				}
			}
			if s.IdentityCalls() != wantCalls || s.TokenCalls() != 0 {
				t.Errorf("IdentityCalls() = %d, TokenCalls() = %d, want %d and 0", s.IdentityCalls(), s.TokenCalls(), wantCalls)
			}
		})
	}
}

func TestCountersAndReset(t *testing.T) {
	s, base := start(t, sandbox.Options{})
	mustToken(t, base)
	getIdentity(t, base, sandbox.LinkSeed, "", clientHeaders())
	getIdentity(t, base, sandbox.LinkSeed, "", nil) // 401: still counted
	getIdentity(t, base, sandbox.LinkRateLimited, "", clientHeaders())
	getIdentity(t, base, "mk_unknown", "x=1", clientHeaders())

	check := func(tokens, total, seed, unknown int) {
		t.Helper()
		got := []int{s.TokenCalls(), s.IdentityCalls(), s.IdentityCallsFor(sandbox.LinkSeed), s.IdentityCallsFor("mk_unknown")}
		if diff := cmp.Diff([]int{tokens, total, seed, unknown}, got); diff != "" {
			t.Errorf("[TokenCalls IdentityCalls seed unknown] mismatch (-want +got):\n%s", diff)
		}
	}
	check(1, 4, 2, 1)
	if q := s.LastIdentityQuery("mk_unknown"); q.Get("x") != "1" {
		t.Errorf("LastIdentityQuery = %v, want x=1", q)
	}
	s.LastIdentityQuery("mk_unknown").Set("x", "2") // a copy: must not change the record
	if q := s.LastIdentityQuery("mk_unknown"); q.Get("x") != "1" {
		t.Errorf("LastIdentityQuery after mutating a copy = %v, want x=1", q)
	}

	s.Reset()
	check(0, 0, 0, 0)
	if q := s.LastIdentityQuery("mk_unknown"); q != nil {
		t.Errorf("LastIdentityQuery after Reset = %v, want nil", q)
	}
}

func TestLatency(t *testing.T) {
	const latency = 50 * time.Millisecond
	s, base := start(t, sandbox.Options{Latency: latency})
	begin := time.Now()
	res, _ := getIdentity(t, base, sandbox.LinkSeed, "", clientHeaders())
	if took := time.Since(begin); res.StatusCode != http.StatusOK || took < latency {
		t.Errorf("status %d after %v, want 200 after at least %v", res.StatusCode, took, latency)
	}

	s.SetLatency(0)
	begin = time.Now()
	getIdentity(t, base, sandbox.LinkSeed, "", clientHeaders())
	if took := time.Since(begin); took >= time.Second {
		t.Errorf("call after SetLatency(0) took %v", took)
	}
}

func TestLatencyCancellable(t *testing.T) {
	s := sandbox.New(sandbox.Options{Latency: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, identityURL("", sandbox.LinkSeed, ""), nil)
	done := make(chan struct{})
	go func() {
		s.ServeHTTP(httptest.NewRecorder(), req)
		close(done)
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ServeHTTP still waiting 5s after the request was cancelled")
	}
	if s.IdentityCallsFor(sandbox.LinkSeed) != 1 {
		t.Errorf("cancelled call not counted")
	}

	// Through a real client: the caller's deadline ends the call.
	_, base := start(t, sandbox.Options{Latency: time.Hour})
	ctx, cancel = context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, identityURL(base, sandbox.LinkSeed, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = clientHeaders()
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Do = %v, want context.DeadlineExceeded", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	// Straight through ServeHTTP: t.Fatal, which the HTTP helpers may call,
	// must not run outside the test goroutine.
	s := sandbox.New(sandbox.Options{})
	// The magic fault ids hang, reset or take seconds; TestFaultsConcurrentUse covers faults.
	var links []sandbox.LinkInfo
	for _, l := range sandbox.Links() {
		if !l.Fault {
			links = append(links, l)
		}
	}
	const workers, calls = 8, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodPost, "/auth/token", strings.NewReader(defaultForm().Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			var tok tokenResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil {
				t.Errorf("token answer %q: %v", rec.Body, err)
			}
			for i := range calls {
				l := links[(w+i)%len(links)]
				req := httptest.NewRequest(http.MethodGet, identityURL("", l.ID, "account_ids=acc_large_0001"), nil)
				req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				if rec.Code != l.Status {
					t.Errorf("%s: status %d, want %d", l.ID, rec.Code, l.Status)
				}
				if i == calls/2 {
					s.SetLatency(time.Millisecond)
				}
				s.LastIdentityQuery(l.ID)
			}
		})
	}
	wg.Wait()
	if s.IdentityCalls() != workers*calls || s.TokenCalls() != workers {
		t.Errorf("IdentityCalls() = %d, TokenCalls() = %d, want %d and %d", s.IdentityCalls(), s.TokenCalls(), workers*calls, workers)
	}
}

func TestLinkCopies(t *testing.T) {
	s, base := start(t, sandbox.Options{})
	for _, id := range []string{sandbox.LinkCopyPrefix + "1", sandbox.LinkCopyPrefix + "ü/2"} {
		res, body := getIdentity(t, base, id, "", clientHeaders())
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET identity %q: status %d, body %.200s", id, res.StatusCode, body)
		}
		var got struct {
			Accounts []struct {
				AccountID string `json:"account_id"`
			} `json:"accounts"`
			Link struct {
				LinkID string `json:"link_id"`
			} `json:"link"`
		}
		mustDecode(t, body, &got, false)
		if got.Link.LinkID != id || len(got.Accounts) != 3 {
			t.Errorf("GET identity %q: link_id %q with %d accounts, want %q with 3", id, got.Link.LinkID, len(got.Accounts), id)
		}
		if n := s.IdentityCallsFor(id); n != 1 {
			t.Errorf("IdentityCallsFor(%q) = %d, want 1", id, n)
		}
		_, body = getIdentity(t, base, id, "account_ids="+got.Accounts[1].AccountID, clientHeaders())
		mustDecode(t, body, &got, false)
		if len(got.Accounts) != 1 {
			t.Errorf("GET identity %q with account_ids: %d accounts, want 1", id, len(got.Accounts))
		}
	}
	if res, _ := getIdentity(t, base, sandbox.LinkCopyPrefix[:len(sandbox.LinkCopyPrefix)-1], "", clientHeaders()); res.StatusCode != http.StatusNotFound {
		t.Errorf("id without the full prefix: status %d, want 404", res.StatusCode)
	}
}
