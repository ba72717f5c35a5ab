package redisstore

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a test leaves a goroutine behind: a Redis
// connection of a Client that was not closed, a fake server still
// accepting.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
