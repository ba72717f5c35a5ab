package graphiql

import (
	"fmt"
	"strings"
)

// PlaceholderLinkID is the example's link id when the upstream is MoneyKit.
const PlaceholderLinkID = "mk_YOUR_LINK_ID"

// exampleSelection is what the example asks of a link: the identity data
// the facade exists for.
const exampleSelection = `    id
    institutionName
    state
    accounts {
      id
      name
      mask
      owners {
        names
        emails { address }
      }
    }`

// DefaultTab returns the query and the headers (JSON, or "") of the tab
// GraphiQL opens with. Over the embedded sandbox the query reads its first
// link and lists every link id in a comment; over MoneyKit it has a
// placeholder id. In JWT mode the headers hold an Authorization header to
// fill in.
func DefaultTab(o Options) (query, headers string) {
	var b strings.Builder
	id, name := PlaceholderLinkID, "Identity"
	if len(o.SandboxLinks) > 0 {
		id, name = o.SandboxLinks[0].ID, "Seed"
		b.WriteString("# mkgraph over the embedded sandbox: fixture data, no credentials needed.\n")
		b.WriteString("# Run the query with Ctrl-Enter or the run button. Sandbox link ids:\n#\n")
		width := 0
		for _, l := range o.SandboxLinks {
			width = max(width, len(l.ID))
		}
		for _, l := range o.SandboxLinks {
			fmt.Fprintf(&b, "#   %-*s  %s\n", width, l.ID, l.About)
		}
		b.WriteString("#\n")
	} else {
		b.WriteString("# mkgraph over MoneyKit. Put one of your link ids in place of " + PlaceholderLinkID + ",\n")
		b.WriteString("# then run the query with Ctrl-Enter or the run button.\n")
	}
	if o.JWT {
		b.WriteString("# Requests need credentials: an end user's JWT in the Headers tab below\n")
		b.WriteString("# (Authorization: Bearer <JWT>, its links claim listing the link), or a\n")
		b.WriteString("# backend's X-Api-Key header in its place.\n")
		headers = "{\n  \"Authorization\": \"Bearer <JWT>\"\n}"
	}
	b.WriteString("# The Docs button (top left) describes every type and field.\n")
	b.WriteString("query " + name + " {\n  link(id: \"" + id + "\") {\n" + exampleSelection + "\n  }\n}\n")
	return b.String(), headers
}

// Tab is one GraphiQL tab the page opens with.
type Tab struct {
	Query   string `json:"query"`
	Headers string `json:"headers,omitempty"`
}

// LoopTabs are the tabs of the refresh loop, when subscriptions exist: one
// watches a link's events (with the fresh data of a completed refresh), the
// other asks MoneyKit for that refresh. Run the first, then the second, and
// watch the first's results.
func LoopTabs(o Options) []Tab {
	if o.Subscriptions == "" {
		return nil
	}
	id := PlaceholderLinkID
	if len(o.SandboxLinks) > 0 {
		id = o.SandboxLinks[0].ID
	}
	_, headers := DefaultTab(o)
	watch := "# 1. Run this first: it waits for the link's events (PENDING, then COMPLETED\n" +
		"#    with the fresh data). 2. Run the Refresh tab. 3. Watch the results here.\n" +
		"subscription Watch {\n  linkEvents(linkId: \"" + id + "\") {\n    kind\n    product\n    refreshState\n    occurredAt\n" +
		"    link {\n      id\n      products { identity { refreshedAt } }\n      accounts { id owners { emails { address } } }\n    }\n  }\n}\n"
	refresh := "# Asks MoneyKit to refresh the link's identity data; the Watch tab shows the result.\n" +
		"mutation Refresh {\n  refreshIdentity(linkId: \"" + id + "\") {\n    linkId\n    requestedAt\n    status { refreshedAt lastAttemptedAt }\n  }\n}\n"
	return []Tab{{Query: watch, Headers: headers}, {Query: refresh, Headers: headers}}
}
