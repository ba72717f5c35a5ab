package sandbox_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a test leaves a goroutine behind: a handler
// still hanging or dripping after its client gave up, a connection never
// closed. Tests close their servers and idle connections rather than ignore
// net/http's goroutines.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
