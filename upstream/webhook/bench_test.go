package webhook_test

import (
	"context"
	"net/http"
	"testing"
)

// BenchmarkVerify measures verifying one delivery with the keys cached:
// header check, ES256 signature, time claims, body SHA-256, body decoding.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	body := eventBody("idem-bench", nil)
	sig := f.signed(body)
	ctx := context.Background()
	if _, err := f.h.Verify(ctx, sig, body); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.h.Verify(ctx, sig, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServeHTTPDuplicate measures a whole repeated delivery: read,
// verify, dedupe hit, answer.
func BenchmarkServeHTTPDuplicate(b *testing.B) {
	f := newFixture(b)
	body := eventBody("idem-bench", nil)
	sig := f.signed(body)
	if rec := f.post(body, sig); rec.Code != http.StatusOK {
		b.Fatal(rec.Code)
	}
	b.ReportAllocs()
	for b.Loop() {
		if rec := f.post(body, sig); rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
