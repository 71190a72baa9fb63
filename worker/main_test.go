package worker_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind: every
// worker started must be shut down completely.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
