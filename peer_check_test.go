package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
)

// peerCheck checks a GraphQL answer to a peer document, from mkgraph or
// from Tailcall (whose schema mirrors MoneyKit's JSON: link.link_id):
// data and no errors, every response key of aliases present with its own
// link id and accounts accounts.
func peerCheck(body []byte, aliases map[string]string, accounts int) error {
	if bytes.Contains(body, []byte(`"errors":`)) || !bytes.HasPrefix(body, []byte(`{"data":{`)) {
		var a struct {
			Errors []struct {
				Message    string `json:"message"`
				Extensions struct {
					Code string `json:"code"`
				} `json:"extensions"`
			} `json:"errors"`
		}
		if json.Unmarshal(body, &a) != nil {
			return errors.New("answer not JSON, or without data")
		}
		codes := []string{}
		for _, e := range a.Errors {
			codes = append(codes, cmp.Or(e.Extensions.Code, "(no code)"))
		}
		return fmt.Errorf("errors %v", codes)
	}
	var a struct {
		Data map[string]*struct {
			ID       string            `json:"id"`
			Accounts []json.RawMessage `json:"accounts"`
			Link     struct {
				LinkID string `json:"link_id"`
			} `json:"link"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return errors.New("answer not JSON")
	}
	if len(a.Data) != len(aliases) {
		return fmt.Errorf("%d links in the answer, want %d", len(a.Data), len(aliases))
	}
	for key, id := range aliases {
		l := a.Data[key]
		switch {
		case l == nil:
			return fmt.Errorf("%s is null", key)
		case cmp.Or(l.ID, l.Link.LinkID) != id:
			return fmt.Errorf("%s: wrong link id", key)
		case len(l.Accounts) != accounts:
			return fmt.Errorf("%s: %d accounts, want %d", key, len(l.Accounts), accounts)
		}
	}
	return nil
}
