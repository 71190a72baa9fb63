package outcome

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ClaimFinished tells, once per broadcast, that broadcast id has finished:
// the first call after it finished answers its final status (done, or
// canceled) and true, every other call false. Metrics count each finished
// broadcast once with it, whichever worker saw it finish.
func (s *Store) ClaimFinished(ctx context.Context, id string) (Status, bool, error) {
	v, err := claimFinishedScript.Run(ctx, s.rdb, []string{s.keys.Outcome(id)}).Text()
	if err != nil {
		return "", false, fmt.Errorf("outcome: reading whether %s finished: %w", id, err)
	}
	if v == "" {
		return "", false, nil
	}
	return Status(v), true, nil
}

// claimFinishedScript: KEYS record. The status of a finished broadcast
// whose finish nobody claimed yet, else "".
var claimFinishedScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'kind') ~= 'broadcast' or not redis.call('HGET', KEYS[1], 'finished_at') then return '' end
if redis.call('HSETNX', KEYS[1], 'finish_claimed', 1) == 0 then return '' end
return redis.call('HGET', KEYS[1], 'status')`)
