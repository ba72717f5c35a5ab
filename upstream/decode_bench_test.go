package upstream_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mkgraph/mkgraph/graph/model"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// sandboxBody returns the sandbox's identity answer for linkID.
func sandboxBody(tb testing.TB, linkID string) []byte {
	tb.Helper()
	req := httptest.NewRequest(http.MethodGet, "/links/"+linkID+"/identity", nil)
	req.Header.Set("X-Client-Id", sandbox.DefaultClientID)
	req.Header.Set("X-Client-Secret", sandbox.DefaultClientSecret)
	rec := httptest.NewRecorder()
	sandbox.New(sandbox.Options{}).ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		tb.Fatalf("status %d: %.300s", rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

func benchDecode(b *testing.B, linkID string) {
	body := sandboxBody(b, linkID)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		id, err := upstream.DecodeIdentity(body)
		if err != nil {
			b.Fatal(err)
		}
		_ = model.NewLink(id, nil)
	}
}

// BenchmarkDecodeSeed decodes the seed link's identity answer (1 account)
// and converts it to the GraphQL model.
func BenchmarkDecodeSeed(b *testing.B) { benchDecode(b, sandbox.LinkSeed) }

// BenchmarkDecodeLarge does the same for the 500-account link.
func BenchmarkDecodeLarge(b *testing.B) { benchDecode(b, sandbox.LinkLarge) }

// BenchmarkDecodeIdentity* measure DecodeIdentity alone (the cache's misses
// pay it), BenchmarkNewLink* model.NewLink alone (every request pays it,
// cached or not).
func BenchmarkDecodeIdentitySeed(b *testing.B)  { benchDecodeIdentity(b, sandbox.LinkSeed) }
func BenchmarkDecodeIdentityLarge(b *testing.B) { benchDecodeIdentity(b, sandbox.LinkLarge) }
func BenchmarkNewLinkSeed(b *testing.B)         { benchNewLink(b, sandbox.LinkSeed) }
func BenchmarkNewLinkLarge(b *testing.B)        { benchNewLink(b, sandbox.LinkLarge) }

// BenchmarkDecodeReference* measure the encoding/json decoder that
// DecodeIdentity replaced (decode_reference_test.go), for ratios from one run.
func BenchmarkDecodeReferenceSeed(b *testing.B) {
	benchDecodeWith(b, sandbox.LinkSeed, upstream.DecodeIdentityReference)
}

func BenchmarkDecodeReferenceLarge(b *testing.B) {
	benchDecodeWith(b, sandbox.LinkLarge, upstream.DecodeIdentityReference)
}

func benchDecodeIdentity(b *testing.B, linkID string) {
	benchDecodeWith(b, linkID, upstream.DecodeIdentity)
}

func benchDecodeWith(b *testing.B, linkID string, decode func([]byte) (*upstream.Identity, error)) {
	body := sandboxBody(b, linkID)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

func benchNewLink(b *testing.B, linkID string) {
	id, err := upstream.DecodeIdentity(sandboxBody(b, linkID))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = model.NewLink(id, nil)
	}
}
