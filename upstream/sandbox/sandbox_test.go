package sandbox_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

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
