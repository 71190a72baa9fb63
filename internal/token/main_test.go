package token_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// quiet drops go-redis's own log lines (dial failures of the Redis-down
// tests); the cache logs what matters through zap.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// TestMain fails the package if a test leaves goroutines behind.
func TestMain(m *testing.M) {
	redis.SetLogger(quiet{})
	goleak.VerifyTestMain(m)
}
