package outcome

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ClaimFinished claims, once per record, the counting of record id's
// final state: the first call that finds the record final (a message or
// task sent, failed or canceled; a broadcast finished: done, or canceled
// with nothing left to happen) answers its final status and true; every
// other call false, as does a call on a record not final yet or missing.
// claimant names the caller's claim: a call repeated with the same
// claimant (its answer was lost) answers true again. Metrics count each
// record once with it, whoever saw it final first, however often its task
// ran.
func (s *Store) ClaimFinished(ctx context.Context, id, claimant string) (Status, bool, error) {
	v, err := claimFinishedScript.Run(ctx, s.rdb, []string{s.keys.Outcome(id)}, claimant).Text()
	if err != nil {
		return "", false, fmt.Errorf("outcome: claiming the finish of %s: %w", id, err)
	}
	if v == "" {
		return "", false, nil
	}
	return Status(v), true, nil
}

// TakeUncounted returns the recipients of broadcast id that were canceled
// outside a worker (by Cancel, of batches a pause parked, or by
// CancelBatch) since the last call, and forgets them: whoever takes them
// counts them, once.
func (s *Store) TakeUncounted(ctx context.Context, id string) (int, error) {
	n, err := takeUncountedScript.Run(ctx, s.rdb, []string{s.keys.Outcome(id)}).Int()
	if err != nil {
		return 0, fmt.Errorf("outcome: taking the uncounted recipients of %s: %w", id, err)
	}
	return n, nil
}

// fieldUncounted holds a broadcast's recipients canceled outside a worker
// that no metric counted yet.
const fieldUncounted = "r_canceled_uncounted"

// claimFinishedScript: KEYS record; ARGV claimant. The status of a final
// record whose finish nobody else claimed, else "".
var claimFinishedScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return '' end
if redis.call('HGET', KEYS[1], 'kind') == 'broadcast' then
  if not redis.call('HGET', KEYS[1], 'finished_at') then return '' end
elseif st ~= 'sent' and st ~= 'failed' and st ~= 'canceled' and st ~= 'done' then
  return ''
end
if redis.call('HSETNX', KEYS[1], 'finish_claimed', ARGV[1]) == 0 and
  redis.call('HGET', KEYS[1], 'finish_claimed') ~= ARGV[1] then
  return ''
end
return st`)

// takeUncountedScript: KEYS record. The uncounted canceled recipients,
// now forgotten.
var takeUncountedScript = redis.NewScript(`
local n = tonumber(redis.call('HGET', KEYS[1], '` + fieldUncounted + `') or '0')
redis.call('HDEL', KEYS[1], '` + fieldUncounted + `')
return n`)
