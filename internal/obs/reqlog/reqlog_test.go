package reqlog_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
)

// MustRecord returns a context carrying a new Record, and the Record.
func MustRecord(tb testing.TB) (context.Context, *reqlog.Record) {
	tb.Helper()
	ctx, r := reqlog.NewContext(context.Background())
	if r == nil {
		tb.Fatal("NewContext returned a nil Record")
	}
	return ctx, r
}

func TestNilRecord(t *testing.T) {
	r := reqlog.From(context.Background())
	if r != nil {
		t.Fatalf("From(context.Background()) = %v, want nil", r)
	}
	// Every method is a no-op on nil.
	r.SetOperation("Op")
	r.AddCode("facade.internal")
	r.AddUpstreamCall()
	if diff := cmp.Diff(reqlog.Summary{}, r.Summary()); diff != "" {
		t.Errorf("nil Summary() mismatch (-want +got):\n%s", diff)
	}
}

func TestFromReturnsTheRecord(t *testing.T) {
	ctx, r := MustRecord(t)
	if got := reqlog.From(ctx); got != r {
		t.Errorf("From(ctx) = %p, want %p", got, r)
	}
	type other struct{}
	if got := reqlog.From(context.WithValue(ctx, other{}, 1)); got != r {
		t.Errorf("From(derived ctx) = %p, want %p", got, r)
	}
	_, r2 := MustRecord(t)
	if r2 == r {
		t.Error("NewContext returned the same Record twice")
	}
}

func TestAddCode(t *testing.T) {
	many := make([]string, 20)
	for i := range many {
		many[i] = fmt.Sprintf("code.%02d", i)
	}
	tests := []struct {
		name string
		add  []string
		want []string
	}{
		{"none", nil, nil},
		{"empty ignored", []string{""}, nil},
		{"deduped in first-seen order", []string{"b", "a", "b", "", "a", "c"}, []string{"b", "a", "c"}},
		{"at most 16", many, many[:16]},
		{"repeats past the limit", append(append([]string{}, many...), many[0], "late"), many[:16]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r := MustRecord(t)
			for _, c := range tt.add {
				r.AddCode(c)
			}
			if diff := cmp.Diff(tt.want, r.Summary().Codes); diff != "" {
				t.Errorf("Codes mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetOperation(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "GetLink", "GetLink"},
		{"underscore digits", "_get_link_2", "_get_link_2"},
		{"empty", "", ""},
		{"spaces and newline", "a b\nc", "a?b?c"},
		{"log injection", "x\",\"level\":\"error", "x???level???error"},
		{"non-ASCII bytes each replaced", "é", "??"},
		{"control", "a\x00\x1b[31m", "a???31m"},
		{"64 kept", strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{"65 truncated", strings.Repeat("a", 65), strings.Repeat("a", 64)},
		{"long truncated", strings.Repeat("ab", 1000), strings.Repeat("ab", 32)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r := MustRecord(t)
			r.SetOperation(tt.in)
			if got := r.Summary().Operation; got != tt.want {
				t.Errorf("SetOperation(%q): Operation = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSetOperationReplaces(t *testing.T) {
	_, r := MustRecord(t)
	r.SetOperation("First")
	r.SetOperation("Second")
	if got := r.Summary().Operation; got != "Second" {
		t.Errorf("Operation = %q, want the last one set", got)
	}
}

func TestSummaryIsACopy(t *testing.T) {
	_, r := MustRecord(t)
	r.AddCode("a")
	s := r.Summary()
	s.Codes[0] = "changed"
	s.Codes = append(s.Codes, "more")
	if diff := cmp.Diff([]string{"a"}, r.Summary().Codes); diff != "" {
		t.Errorf("Record changed through its Summary (-want +got):\n%s", diff)
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx, _ := MustRecord(t)
	const workers, each = 32, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := reqlog.From(ctx)
			for i := range each {
				r.AddUpstreamCall()
				r.AddCode(fmt.Sprintf("code.%d", (w+i)%4))
				r.SetOperation(fmt.Sprintf("Op%d", w))
				_ = r.Summary()
			}
		})
	}
	wg.Wait()
	s := reqlog.From(ctx).Summary()
	if s.UpstreamCalls != workers*each {
		t.Errorf("UpstreamCalls = %d, want %d", s.UpstreamCalls, workers*each)
	}
	if len(s.Codes) != 4 {
		t.Errorf("Codes = %q, want 4 distinct", s.Codes)
	}
	if !strings.HasPrefix(s.Operation, "Op") {
		t.Errorf("Operation = %q, want one of the names set", s.Operation)
	}
}
