package loader

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/graph/model"
)

func TestUnknownValuesWarnedOnceAcrossRequests(t *testing.T) {
	var logs syncBuffer
	ff := &fakeFetcher{state: map[string]string{"n1": "reconnecting", "n2": "reconnecting", "n3": "paused"}}
	f := NewFactory(Config{Fetcher: ff})
	logger := zerolog.New(&logs)

	for range 2 { // two requests
		ctx := logger.WithContext(MustRequest(t, f))
		links, errs := Links(ctx, []string{"n1", "n2", "n3"})
		if errs != nil {
			t.Fatalf("Links: %v", errs)
		}
		for _, l := range links {
			if l.State != model.LinkStateUnknown {
				t.Errorf("link %s state = %s, want %s", l.ID, l.State, model.LinkStateUnknown)
			}
		}
	}

	type entry struct {
		Level, Kind, Value string
	}
	count := map[entry]int{}
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var e entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		count[e]++
	}
	want := map[entry]int{
		{"warn", "link.state", "reconnecting"}: 1,
		{"warn", "link.state", "paused"}:       1,
	}
	if diff := cmp.Diff(want, count); diff != "" {
		t.Errorf("warnings mismatch (-want +got):\n%s", diff)
	}
}

func TestWarnedSetIsBounded(t *testing.T) {
	s := &onceSet{seen: map[string]struct{}{}}
	for i := range maxWarned {
		if !s.add(fmt.Sprint(i)) {
			t.Fatalf("add(%d) = false before the bound", i)
		}
	}
	if s.add("one more") {
		t.Error("add past the bound = true, want false")
	}
	if s.add("0") {
		t.Error("add of a known value = true, want false")
	}
}

func TestWarningValueTruncated(t *testing.T) {
	var logs syncBuffer
	l := NewFactory(Config{Fetcher: &fakeFetcher{}}).New()
	ctx := zerolog.New(&logs).WithContext(context.Background())
	l.warnFunc(ctx)("link.state", strings.Repeat("v", 1000))
	var e struct{ Value string }
	if err := json.Unmarshal(logs.Bytes(), &e); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	if len(e.Value) > 64+len("…") {
		t.Errorf("logged value is %d bytes, want it truncated to 64", len(e.Value))
	}
}
