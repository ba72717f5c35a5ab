package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// The deterministic upstream of the differential tests (differential_test.go):
// the sandbox's fixtures, fetched once, identities built here for what the
// fixtures do not have, and links that fail in every way a link can.

// Link ids of diffFetcher and diffAuthorize.
const (
	diffNulls    = "mk_diff_nulls"    // every optional field null, every list empty
	diffEscapes  = "mk_diff_escapes"  // strings that need escaping, invalid UTF-8
	diffNumbers  = "mk_diff_numbers"  // decimals, timestamps with nanoseconds in other zones
	diffUnknown  = "mk_diff_unknown"  // upstream values the schema does not know
	diffAccounts = "mk_diff_accounts" // many accounts, repeated account ids, many owners

	diffNotFound    = "mk_diff_not_found" // 404 link_error.not_found, as every id without an answer
	diffRateLimited = "mk_diff_rate_limited"
	diffUnavailable = "mk_diff_unavailable"
	diffBadState    = "mk_diff_bad_state"
	diffTimeout     = "mk_diff_timeout"
	diffPlainError  = "mk_diff_plain_error" // not an *apierr.Error: facade.internal
	diffFetchPanic  = "mk_diff_fetch_panic" // the fetcher panics (the loader recovers)

	diffDenied    = "mk_diff_denied"     // Authorize refuses every id with this prefix
	diffAuthPanic = "mk_diff_auth_panic" // Authorize panics
	// diffAfter + id (+ "|" + anything): Authorize waits until this request
	// has fetched id, then allows it; its answer is id's. It orders loads
	// that the loaders would otherwise race (which one exceeds MaxLinks).
	diffAfter = "mk_diff_after:"
)

// diffSandboxLinks are the sandbox links the differential upstream answers
// as the sandbox does.
var diffSandboxLinks = []string{
	sandbox.LinkSeed, sandbox.LinkHousehold, sandbox.LinkSparse, sandbox.LinkInternational, sandbox.LinkNovel,
	sandbox.LinkLarge, "mk_bench00", "mk_bench01", "mk_bench02", "mk_bench03", "mk_bench04",
	"mk_bench05", "mk_bench06", "mk_bench07", "mk_bench08", "mk_bench09",
}

// diffErrors are the failing links' errors.
var diffErrors = map[string]error{
	diffNotFound: &apierr.Error{Status: 404, Code: "link_error.not_found", Message: "Link not found.",
		DocumentationURL: "https://docs.moneykit.com/api/reference/link-errors"},
	diffRateLimited: &apierr.Error{Status: 429, Code: apierr.CodeRateLimitExceeded, Message: "Rate limit exceeded.",
		DocumentationURL: "https://docs.moneykit.com/api/reference/rate-limits", RetryAfter: 30 * time.Second, HasRetryAfter: true},
	diffUnavailable: apierr.New(apierr.CodeUpstreamUnavailable, 503, errors.New("503 text/html")),
	diffBadState: &apierr.Error{Status: 422, Code: "link_error.bad_state", Message: "The link is in a bad state; the user must reconnect it.",
		LinkErrorCode: "auth_expired"},
	diffTimeout:    apierr.New(apierr.CodeUpstreamTimeout, 0, context.DeadlineExceeded),
	diffPlainError: errors.New("a bare error from the fetcher"),
}

var errDiffForbidden = &apierr.Error{Code: apierr.CodeForbidden, Message: "You may not read this link."}

// diffIdentities are the answers: the sandbox's and diffBuilt's.
var diffIdentities = sync.OnceValues(func() (map[string]*upstream.Identity, error) {
	hs := httptest.NewServer(sandbox.New(sandbox.Options{}))
	defer hs.Close()
	up, err := upstream.New(upstream.Config{BaseURL: hs.URL, ClientID: sandbox.DefaultClientID, ClientSecret: sandbox.DefaultClientSecret})
	if err != nil {
		return nil, err
	}
	m := diffBuilt()
	for _, id := range diffSandboxLinks {
		if m[id], err = up.GetIdentity(context.Background(), id); err != nil {
			return nil, fmt.Errorf("sandbox %s: %w", id, err)
		}
	}
	return m, nil
})

// diffFetcher answers diffIdentities and diffErrors; it records each fetch
// in the request's diffProbe (for diffAfter).
type diffFetcher struct{ identities map[string]*upstream.Identity }

func (f diffFetcher) GetIdentity(ctx context.Context, id string) (*upstream.Identity, error) {
	if p := diffProbeFrom(ctx); p != nil {
		defer p.fetched(id)
	}
	if id == diffFetchPanic {
		panic("diffFetcher: " + id)
	}
	id = afterWhat(id)
	if err := diffErrors[id]; err != nil {
		return nil, err
	}
	if v := f.identities[id]; v != nil {
		return v, nil
	}
	return nil, diffErrors[diffNotFound]
}

// diffAuthorize is HandlerConfig.Authorize of the differential handlers.
func diffAuthorize(ctx context.Context, id string) error {
	switch {
	case strings.HasPrefix(id, diffDenied):
		return errDiffForbidden
	case id == diffAuthPanic:
		panic("diffAuthorize: " + id)
	case strings.HasPrefix(id, diffAfter):
		if p := diffProbeFrom(ctx); p != nil {
			p.waitFetched(afterWhat(id))
		}
	}
	return nil
}

// afterWhat is the id a diffAfter id waits for (id itself otherwise).
func afterWhat(id string) string {
	if rest, ok := strings.CutPrefix(id, diffAfter); ok {
		id, _, _ = strings.Cut(rest, "|")
	}
	return id
}

func diffStr(s string) *string { return &s }
func diffBool(b bool) *bool    { return &b }

func diffDec(s string) upstream.Decimal {
	d, err := upstream.NewDecimal(s)
	if err != nil {
		panic(err)
	}
	return d
}

func diffTime(t time.Time) upstream.Timestamp { return upstream.Timestamp{Time: t} }

// diffStrings need escaping, or must be written as they are.
var diffStrings = []string{
	`quote " backslash \ slash / end`,
	"controls \x00\x01\x07\x08\x0b\x0c\x1b\x1f\x7f tab\t cr\r lf\n",
	"separators \u2028 and \u2029",
	"invalid UTF-8 \xff\xfe, cut \xe2\x80, overlong \xc0\xaf, lone \x80",
	"html <script>alert('&amp;')</script> > < &",
	"non-ASCII é ß 中文 😀 \ufeff",
	"", " ",
}

func diffBuilt() map[string]*upstream.Identity {
	at := func(y int, mo time.Month, d, h, mi, s, ns int, zone *time.Location) upstream.Timestamp {
		return diffTime(time.Date(y, mo, d, h, mi, s, ns, zone))
	}
	minus730 := time.FixedZone("", -(7*3600 + 30*60))
	plus14 := time.FixedZone("LINT", 14*3600)
	odd := time.FixedZone("LMT", 3600+17) // an offset with seconds
	m := map[string]*upstream.Identity{}

	m[diffNulls] = &upstream.Identity{
		Link: upstream.Link{LinkID: diffNulls, InstitutionID: "", InstitutionName: "", State: "connected", Provider: ""},
		Accounts: []upstream.Account{
			{AccountID: "acc_nulls_1", AccountType: "", Name: ""},
			{AccountID: "acc_nulls_2", AccountType: "other", Name: "n", Balances: &upstream.Balances{},
				Owners: []upstream.Owner{{}, {Names: []*string{nil}, Addresses: []upstream.Address{{}},
					PhoneNumbers: []upstream.PhoneNumber{{}}, Emails: []upstream.Email{{}}}}},
		},
	}

	var tags []*string
	for i := range diffStrings {
		tags = append(tags, &diffStrings[i], nil)
	}
	esc := func(i int) string { return diffStrings[i%len(diffStrings)] }
	var accounts []upstream.Account
	for i := range diffStrings {
		accounts = append(accounts, upstream.Account{
			AccountID: "acc_esc_" + esc(i), AccountType: esc(i + 1), Name: esc(i + 2), Nickname: diffStr(esc(i + 3)),
			AccountMask: diffStr(esc(i + 4)), OriginalID: diffStr(esc(i + 5)), Closed: diffBool(i%2 == 0),
			Balances: &upstream.Balances{Currency: diffStr(esc(i + 6)), Current: diffDec("1.5")},
			Owners: []upstream.Owner{{
				Names:        []*string{diffStr(esc(i)), nil, diffStr(esc(i + 7))},
				Addresses:    []upstream.Address{{Street: diffStr(esc(i)), City: diffStr(esc(i + 1)), Region: diffStr(esc(i + 2)), PostalCode: diffStr(esc(i + 3)), Country: diffStr(esc(i + 4)), Primary: diffBool(true)}},
				PhoneNumbers: []upstream.PhoneNumber{{Number: diffStr(esc(i + 5)), Type: diffStr(esc(i + 6)), Primary: diffBool(false)}, {Type: diffStr("no number: dropped")}},
				Emails:       []upstream.Email{{Address: diffStr(esc(i + 7)), Primary: diffBool(true)}, {Primary: diffBool(true)}},
			}},
		})
	}
	m[diffEscapes] = &upstream.Identity{
		Link: upstream.Link{LinkID: "mk_\"esc\"\\" + esc(3), InstitutionID: esc(0), InstitutionName: esc(1),
			InstitutionAvatar: diffStr(esc(2)), State: "error", ErrorCode: diffStr(esc(3)), Provider: esc(4), LinkTags: tags,
			Webhook: diffStr(esc(5)), Products: map[string]*upstream.ProductStatus{
				"identity": {ErrorCode: diffStr(esc(1)), ErrorMessage: diffStr(esc(2)), Unavailable: diffStr(esc(3))},
				"accounts": {ErrorMessage: diffStr(esc(4))},
			}, AvailableProducts: []string{"identity", "accounts"}},
		Accounts: accounts,
	}

	m[diffNumbers] = &upstream.Identity{
		Link: upstream.Link{LinkID: diffNumbers, InstitutionID: "numbers", InstitutionName: "Numbers", State: "connecting",
			Provider: "p", Products: map[string]*upstream.ProductStatus{
				"accounts":        {RefreshedAt: at(2023, 2, 16, 9, 14, 11, 123456789, minus730), LastAttemptedAt: at(2024, 1, 1, 0, 0, 0, 1, plus14)},
				"account_numbers": {RefreshedAt: at(1, 1, 1, 0, 0, 0, 1, time.UTC), LastAttemptedAt: at(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
				"identity":        {RefreshedAt: at(2020, 2, 29, 23, 59, 59, 500000000, odd)},
				"transactions":    {RefreshedAt: at(2023, 6, 1, 12, 0, 0, 0, time.UTC), LastEnriched: at(2023, 6, 1, 12, 0, 0, 10, minus730)},
				"investments":     nil,
				"enrichment":      {},
			}, AvailableProducts: []string{"accounts", "account_numbers", "identity", "transactions", "investments", "enrichment"}},
		Accounts: []upstream.Account{
			{AccountID: "acc_n1", AccountType: "depository.checking", Name: "a", Balances: &upstream.Balances{Currency: diffStr("USD"),
				Available: diffDec("0"), Current: diffDec("-0.00"), Limit: diffDec("12345678901234567890.123456789"), BalanceDate: at(2023, 2, 16, 9, 14, 11, 1, plus14)}},
			{AccountID: "acc_n2", AccountType: "liability.credit_card", Name: "b", Balances: &upstream.Balances{Currency: diffStr("JPY"),
				Available: diffDec("1e10"), Current: diffDec("-1.5E-7"), Limit: diffDec("0.10")}},
			{AccountID: "acc_n3", AccountType: "investment", Name: "c", Balances: &upstream.Balances{Current: diffDec("340.12"), BalanceDate: at(2023, 2, 16, 0, 0, 0, 0, odd)}},
		},
	}

	m[diffUnknown] = &upstream.Identity{
		Link: upstream.Link{LinkID: diffUnknown, InstitutionID: "novel", InstitutionName: "Novel", State: "reconnecting",
			Provider: "new", Products: map[string]*upstream.ProductStatus{"liabilities": {}, "identity": {Unavailable: diffStr("soon")}},
			AvailableProducts: []string{"liabilities", "identity", "IDENTITY", ""}},
		Accounts: []upstream.Account{{AccountID: "acc_u1", AccountType: "crypto.wallet", Name: "w",
			Owners: []upstream.Owner{{PhoneNumbers: []upstream.PhoneNumber{{Number: diffStr("1"), Type: diffStr("fax")}}}}}},
	}

	var many []upstream.Account
	for i := range 12 {
		id := fmt.Sprintf("acc_m%d", i%9) // three ids twice: the first one counts
		var owners []upstream.Owner
		for j := range i % 4 {
			owners = append(owners, upstream.Owner{Names: []*string{diffStr(fmt.Sprintf("owner %d.%d", i, j))},
				Emails: []upstream.Email{{Address: diffStr(fmt.Sprintf("o%d.%d@example.com", i, j)), Primary: diffBool(j == 0)}}})
		}
		many = append(many, upstream.Account{AccountID: id, AccountType: "depository.savings", Name: fmt.Sprintf("account %d", i),
			AccountMask: diffStr(fmt.Sprintf("%04d", i)), Closed: diffBool(i%3 == 0), Owners: owners})
	}
	m[diffAccounts] = &upstream.Identity{
		Link: upstream.Link{LinkID: diffAccounts, InstitutionID: "many", InstitutionName: "Many", State: "deleted", Provider: "p",
			LinkTags: []*string{diffStr("a"), diffStr("b")}},
		Accounts: many,
	}
	return m
}
