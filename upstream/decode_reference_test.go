package upstream

import (
	"encoding/json"
	"fmt"
)

// decodeIdentityReference is DecodeIdentity as it was before decode.go: one
// json.Unmarshal into the structs (with Decimal's and Timestamp's
// UnmarshalJSON), then the same checks. FuzzDecodeIdentityDifferential holds
// DecodeIdentity to it, answer for answer.
func decodeIdentityReference(body []byte) (*Identity, error) {
	var id Identity
	// Unmarshal, unlike a Decoder, refuses anything after the value.
	if err := json.Unmarshal(body, &id); err != nil {
		return nil, fmt.Errorf("decode identity: %w", err)
	}
	if id.Link.LinkID == "" {
		return nil, fmt.Errorf("decode identity: link.link_id: %w", errMissingField)
	}
	for i := range id.Accounts {
		if id.Accounts[i].AccountID == "" {
			return nil, fmt.Errorf("decode identity: accounts[%d].account_id: %w", i, errMissingField)
		}
	}
	return &id, nil
}

// DecodeIdentityReference lets the benchmarks of package upstream_test
// measure the reference in the same run.
var DecodeIdentityReference = decodeIdentityReference
