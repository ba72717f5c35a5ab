package sandbox_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestParseRandomFaults(t *testing.T) {
	got, err := sandbox.ParseRandomFaults(" 503=0.2, hang=0.05,429=0.01,drip=0 ")
	if err != nil {
		t.Fatal(err)
	}
	want := []sandbox.RandomFault{
		{Fault: sandbox.Fault{Status: 503}, Rate: 0.2},
		{Fault: sandbox.Fault{Hang: true}, Rate: 0.05},
		{Fault: sandbox.Fault{Status: 429, RetryAfter: "1"}, Rate: 0.01},
		{Fault: sandbox.Fault{Drip: 100 * time.Millisecond}, Rate: 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseRandomFaults mismatch (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"503", "503=2", "503=-0.1", "nope=0.1", "200=0.1", "hang=x"} {
		if _, err := sandbox.ParseRandomFaults(bad); err == nil {
			t.Errorf("ParseRandomFaults(%q) = nil error, want one", bad)
		}
	}
	if got, err := sandbox.ParseRandomFaults(""); err != nil || got != nil {
		t.Errorf("ParseRandomFaults(\"\") = %v, %v; want nil, nil", got, err)
	}
}

func TestStatsPath(t *testing.T) {
	s, base := start(t, sandbox.Options{})
	getIdentity(t, base, sandbox.LinkSeed, "", clientHeaders())
	getIdentity(t, base, sandbox.LinkFault502, "", clientHeaders())
	res, body := do(t, "GET", base+sandbox.StatsPath, nil, nil)
	var got sandbox.Stats
	mustDecode(t, body, &got, true)
	want := sandbox.Stats{IdentityCalls: 2, FaultsServed: 1}
	if res.StatusCode != 200 || got != want || s.Stats() != want {
		t.Errorf("GET %s = %d %+v (Stats() %+v), want 200 %+v", sandbox.StatsPath, res.StatusCode, got, s.Stats(), want)
	}
}
