package upstream_test

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// The client reuses an answer's buffer once it is decoded (exchange.go), so
// a decoded Identity must not point into the bytes it was read from:
// overwriting them afterwards changes nothing.
func TestDecodedIdentityOwnsItsBytes(t *testing.T) {
	for _, link := range []string{sandbox.LinkSeed, sandbox.LinkHousehold, sandbox.LinkInternational, sandbox.LinkNovel, sandbox.LinkSparse} {
		body := sandboxBody(t, link)
		want, err := upstream.DecodeIdentity(bytes.Clone(body))
		if err != nil {
			t.Fatalf("%s: %v", link, err)
		}
		got, err := upstream.DecodeIdentity(body)
		if err != nil {
			t.Fatalf("%s: %v", link, err)
		}
		for i := range body {
			body[i] = 'x'
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(upstream.Decimal{})); diff != "" {
			t.Errorf("%s: the decoded identity changed with its buffer (-want +got):\n%s", link, diff)
		}
	}
}
