package graph

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// diffEverything selects every field of every type, __typename included.
const diffEverything = `
fragment Everything on Link {
  __typename id institutionId institutionName institutionAvatar state errorCode provider tags webhook
  products { __typename accounts { ...Status } accountNumbers { ...Status } identity { ...Status }
    transactions { ...Status } investments { ...Status } enrichment { ...Status } }
  availableProducts
  accounts { __typename id type name nickname mask originalId closed
    balances { __typename currency available current limit balanceDate }
    owners { __typename names addresses { __typename street city region postalCode country primary }
      phoneNumbers { __typename number type primary } emails { __typename address primary } } }
}
fragment Status on ProductStatus { __typename refreshedAt lastAttemptedAt errorCode errorMessage unavailable lastEnriched }`

// diffFailingIDs fail in every way a link can, before or at the upstream.
var diffFailingIDs = []string{
	diffNotFound, diffRateLimited, diffUnavailable, diffBadState, diffTimeout, diffPlainError, diffFetchPanic,
	"mk_unknown_to_the_upstream", diffDenied, diffDenied + "_too",
	"", ".", "..", "bad\x01id", "del\x7f", strings.Repeat("x", upstream.MaxLinkIDLen+1),
}

// diffGoodIDs answer.
var diffGoodIDs = append(append([]string{}, diffSandboxLinks...), diffNulls, diffEscapes, diffNumbers, diffUnknown, diffAccounts)

// TestExecutorsAgreeFailures: every identity with every field, and links
// that fail at every path (upstream errors, refusals, invalid ids, too many
// ids, budgets, panics), give the same bytes on both executors.
func TestExecutorsAgreeFailures(t *testing.T) {
	t.Parallel()
	type tc struct {
		cfg   diffConfig
		query string
		vars  map[string]any
	}
	var cases []tc
	add := func(cfg diffConfig, query string, vars map[string]any) {
		cases = append(cases, tc{cfg, query, vars})
	}
	all := append(append([]string{}, diffGoodIDs...), diffFailingIDs...)
	for _, id := range all {
		add(diffMain, `query($id: ID!) { link(id: $id) { ...Everything } again: link(id: $id) { id accounts(ids: []) { id } } }`+diffEverything,
			map[string]any{"id": id})
	}
	for i := 0; i < len(all); i += 6 {
		ids := all[i:min(i+6, len(all))]
		add(diffMain, `query($ids: [ID!]!) { links(ids: $ids) { ...Everything } __typename }`+diffEverything, map[string]any{"ids": ids})
	}
	add(diffWide, `query($ids: [ID!]!) { links(ids: $ids) { ...Everything } }`+diffEverything, map[string]any{"ids": all})
	add(diffWide, `query($ids: [ID!]!) { a: links(ids: $ids) { id } b: links(ids: $ids) { state accounts { id } } }`,
		map[string]any{"ids": append(all, all...)})

	// Literal ids, failing ones among them, in one operation.
	var b strings.Builder
	b.WriteString("{ __typename\n")
	for i, id := range all {
		fmt.Fprintf(&b, "  l%d: link(id: %s) { id state accounts { id } }\n", i, gqlQuote(id))
	}
	b.WriteString("}")
	add(diffWide, b.String(), nil)
	add(diffMain, `{ a: link(id: "`+diffNotFound+`") { id } b: links(ids: ["`+sandbox.LinkSeed+`", "`+diffRateLimited+`", "`+diffDenied+`", "", "`+
		diffFetchPanic+`", "`+sandbox.LinkSeed+`"]) { id accounts { id } } __typename c: link(id: "`+diffAuthPanic+`") { id } }`, nil)

	// Authorize panics: in link(id:) the field is null, in links(ids:) the
	// whole list, and so the data.
	add(diffMain, `{ link(id: "`+diffAuthPanic+`") { id } ok: link(id: "`+sandbox.LinkSeed+`") { id } }`, nil)
	add(diffMain, `{ ok: link(id: "`+sandbox.LinkSeed+`") { id } links(ids: ["`+sandbox.LinkSeed+`", "`+diffAuthPanic+`"]) { id } }`, nil)

	// Too many ids, literal, through a variable and in a fragment.
	seven := strings.Repeat(`"`+sandbox.LinkSeed+`", `, 7)
	add(diffMain, `{ links(ids: [`+seven+`]) { id } }`, nil)
	add(diffMain, `query($ids: [ID!]!) { links(ids: $ids) { id } }`, map[string]any{"ids": strings.Split(strings.Repeat("a,", 7), ",")[:7]})
	add(diffMain, `{ ...Q } fragment Q on Query { links(ids: [`+seven+`]) { id } }`, nil)
	add(diffMain, `{ a: links(ids: [`+strings.Repeat(`"x", `, 6)+`]) { id } b: links(ids: [`+strings.Repeat(`"y", `, 6)+`]) { id } }`, nil)

	// The budgets, where the answer does not depend on scheduling: each
	// accounts selection over the budget alone, or all of them within it,
	// and links ordered by diffAfter.
	large, household := sandbox.LinkLarge, sandbox.LinkHousehold
	add(diffAccountBudget, `{ link(id: "`+large+`") { id accounts { id } } }`, nil)
	add(diffAccountBudget, `{ links(ids: ["`+large+`", "`+large+`"]) { id accounts { id } } }`, nil)
	add(diffAccountBudget, `{ link(id: "`+household+`") { a: accounts { id } b: accounts(ids: []) { id } c: accounts(ids: ["nope"]) { id } } }`, nil)
	add(diffAccountBudget, `{ a: link(id: "`+large+`") { accounts { id } } b: link(id: "`+diffAccounts+`") { accounts { name }
		x: accounts(ids: ["acc_m1", "acc_m2", "acc_m3", "acc_m4", "acc_m5"]) { id } } }`, nil)
	seed, after := sandbox.LinkSeed, diffAfter+sandbox.LinkSeed
	add(diffLinkBudget, `{ a: link(id: "`+seed+`") { id } b: link(id: "`+seed+`") { id } links(ids: ["`+seed+`", "`+diffDenied+`", "", "`+seed+`"]) { id } }`, nil)
	add(diffLinkBudget, `{ a: link(id: "`+seed+`") { id } b: link(id: "`+after+`") { id accounts { id } } }`, nil)
	add(diffLinkBudget, `{ a: link(id: "`+seed+`") { id } l: links(ids: ["`+after+`|1", "`+after+`|2", "`+seed+`"]) { id } }`, nil)

	// Account ids that need escaping, through variables.
	var escIDs []any
	for _, s := range diffStrings {
		escIDs = append(escIDs, "acc_esc_"+s)
	}
	add(diffMain, `query($a: [ID!]) { link(id: "`+diffEscapes+`") { accounts(ids: $a) { id name owners { names } } } }`,
		map[string]any{"a": escIDs})

	stats := &diffStats{}
	for _, c := range cases {
		if _, covered := newDiffPair(t, c.cfg).check(t, diffRequest{Query: c.query, Variables: c.vars}, stats); covered == diffFallback {
			t.Errorf("[%s] gqlgen ran, not the plan: %s", c.cfg.Name, c.query)
		}
	}
	t.Log(stats)
}

// gqlQuote writes s as a GraphQL string literal.
func gqlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
