package defaults_test

import (
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/defaults"
)

func TestPositive(t *testing.T) {
	for _, tt := range []struct{ in, want int }{{0, 7}, {-1, 7}, {3, 3}} {
		v := tt.in
		defaults.Positive(&v, 7)
		if v != tt.want {
			t.Errorf("Positive(%d, 7) = %d, want %d", tt.in, v, tt.want)
		}
	}
	d := time.Duration(0)
	defaults.Positive(&d, time.Second)
	f := 0.5
	defaults.Positive(&f, 0.2)
	if d != time.Second || f != 0.5 {
		t.Errorf("duration %v, ratio %v", d, f)
	}
}
