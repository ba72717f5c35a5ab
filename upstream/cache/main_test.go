package cache_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a test leaves a goroutine behind: a shared
// upstream call still running, or otter's clean-up goroutine of a cache that
// was not closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
