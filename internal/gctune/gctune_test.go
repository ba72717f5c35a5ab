package gctune

import (
	"context"
	"runtime/debug"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		live, headroom uint64
		want           int
	}{
		{0, 48 * mib, MaxGOGC},
		{2 * mib, 48 * mib, MaxGOGC},  // tiny heap: goal capped at 9× live
		{12 * mib, 48 * mib, 400},     // goal 12 + 48 MiB
		{24 * mib, 48 * mib, 200},     // goal 24 + 48 MiB
		{96 * mib, 48 * mib, MinGOGC}, // large heap: never below Go's default
	}
	for _, tt := range tests {
		if got := Percent(tt.live, tt.headroom); got != tt.want {
			t.Errorf("Percent(%d MiB, %d MiB) = %d, want %d", tt.live/mib, tt.headroom/mib, got, tt.want)
		}
	}
}

// TestStart: the tuner sets GOGC at once from the live heap and stops with
// its context.
func TestStart(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	ctx, cancel := context.WithCancel(context.Background())
	wait := Start(ctx, 1<<40, time.Millisecond) // a huge headroom: MaxGOGC
	if got := debug.SetGCPercent(MaxGOGC); got != MaxGOGC {
		t.Errorf("GOGC after Start = %d, want %d", got, MaxGOGC)
	}
	cancel()
	done := make(chan struct{})
	go func() { wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the tuner did not stop with its context")
	}
}
