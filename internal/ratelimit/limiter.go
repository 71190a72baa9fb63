package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limit is at most N events (calls, or recipients) in any window of Per.
// A Limit with N <= 0 is off.
type Limit struct {
	N   int
	Per time.Duration
}

// On reports whether the limit applies.
func (l Limit) On() bool { return l.N > 0 && l.Per > 0 }

// String implements fmt.Stringer: "20/1s".
func (l Limit) String() string {
	if !l.On() {
		return "off"
	}
	return strconv.Itoa(l.N) + "/" + l.Per.String()
}

// interval is the GCRA emission interval that keeps any window of Per at
// or under N when no single event costs more than maxCost: the limiter
// runs at N-maxCost per Per, and the one event that may straddle a window's
// start costs at most maxCost.
func (l Limit) interval(maxCost int) time.Duration {
	n := l.N - maxCost
	if n < 1 {
		n = 1
	}
	return l.Per / time.Duration(n)
}

// Names of the limits, as Decision.Limit reports them.
const (
	LimitPause      = "pause"      // every call paused (DingTalk banned our IP)
	LimitFleet      = "fleet"      // calls from the whole fleet
	LimitCalls      = "calls"      // calls per app per API
	LimitRecipients = "recipients" // recipients per app
)

// Request is what one call to DingTalk will cost.
type Request struct {
	// App names the app; API the endpoint path. Both key the calls limit.
	App, API string
	// Calls limits the app's calls to API. Its rate is scaled down while
	// DingTalk throttles the app (see Limiter.Throttled).
	Calls Limit
	// Recipients limits the app's recipients; Cost is this call's count.
	Recipients Limit
	Cost       int
	// Fleet limits every call of the fleet (DingTalk's per-IP rule).
	Fleet Limit
}

// Decision is the limiter's answer to a Request.
type Decision struct {
	// Allowed says the call may be made after Wait (a reserved slot);
	// otherwise nothing was reserved and Wait says when to ask again.
	Allowed bool
	Wait    time.Duration
	// Limit names the limit that made the call wait, "" if none.
	Limit string
	// Factor scales the app's calls limit: 1 unless DingTalk throttled it.
	Factor float64
}

// MaxCost is the largest cost of one call the recipients limit is shaped
// for: 100 user ids and 20 department ids, DingTalk's most per call.
const MaxCost = 120

// Adaptive steps: a throttling answer scales the app's calls rate by
// decreaseFactor (at most once per decreaseEvery, so one burst of answers
// counts once, and never below minFactor); after recoverAfter without one,
// each success adds recoverStep, at most once per recoverEvery.
const (
	decreaseFactor = 0.7
	decreaseEvery  = time.Second
	minFactor      = 0.05
	recoverAfter   = 5 * time.Second
	recoverStep    = 0.05
	recoverEvery   = time.Second
)

// Limiter reserves DingTalk's budget for the calls of every process that
// shares its Redis: GCRA over keys in Redis, all limits of a call checked
// and reserved in one script, so a call denied by one limit takes nothing
// from the others. It is safe for concurrent use.
type Limiter struct {
	rdb  redis.UniversalClient
	keys Keys
}

// New returns a limiter on rdb whose keys start with prefix.
func New(rdb redis.UniversalClient, prefix string) *Limiter {
	return &Limiter{rdb: rdb, keys: Keys{prefix: prefix}}
}

// Keys names the limiter's Redis keys. All of them share the hash tag
// {rate}, so the scripts touching several work on Redis Cluster too.
type Keys struct{ prefix string }

// Calls is the GCRA state of app's calls to api.
func (k Keys) Calls(app, api string) string { return k.prefix + ":{rate}:calls:" + app + ":" + api }

// Adapt holds the scale of app's calls to api while DingTalk throttles.
func (k Keys) Adapt(app, api string) string { return k.prefix + ":{rate}:adapt:" + app + ":" + api }

// Recipients is the GCRA state of app's recipients.
func (k Keys) Recipients(app string) string { return k.prefix + ":{rate}:recipients:" + app }

// Fleet is the GCRA state of every call of the fleet.
func (k Keys) Fleet() string { return k.prefix + ":{rate}:fleet" }

// Pause is set while DingTalk bans our address.
func (k Keys) Pause() string { return k.prefix + ":{rate}:pause" }

// reserveScript checks every limit of a call and reserves all or none.
//
// KEYS[1] pause, KEYS[2] adapt hash, KEYS[3..] GCRA keys.
// ARGV[1] max wait (µs), ARGV[2] number of limits, then per limit:
// interval (µs), burst (µs), cost, adaptive (1: divide interval by the
// adapt hash's factor), name.
// Answers {allowed, wait µs, name of the limit waited for, factor ×1e6}.
var reserveScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local factor = tonumber(redis.call('HGET', KEYS[2], 'f') or '1')
local pause = redis.call('PTTL', KEYS[1])
if pause > 0 then
	return {0, pause * 1000, 'pause', math.floor(factor * 1000000)}
end
local maxwait = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local wait, which = 0, ''
local tats, steps = {}, {}
for i = 1, n do
	local a = 2 + (i - 1) * 5
	local interval = tonumber(ARGV[a + 1])
	local burst = tonumber(ARGV[a + 2])
	local cost = tonumber(ARGV[a + 3])
	if ARGV[a + 4] == '1' then
		interval = interval / factor
		burst = burst / factor
	end
	local tat = tonumber(redis.call('GET', KEYS[2 + i]) or '0')
	tats[i], steps[i] = tat, interval * cost
	local w = math.max(tat, now) + interval * cost - burst - now
	if w > wait then
		wait, which = w, ARGV[a + 5]
	end
end
if wait > maxwait then
	return {0, math.floor(wait), which, math.floor(factor * 1000000)}
end
for i = 1, n do
	local tat = math.max(tats[i], now + wait) + steps[i]
	redis.call('SET', KEYS[2 + i], string.format('%.0f', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
end
return {1, math.floor(wait), which, math.floor(factor * 1000000)}`)

// Reserve asks for a slot for req within maxWait: allowed, the call may be
// made once Wait has passed, and its budget is taken; denied, nothing is
// taken and Wait says when a slot may be free.
func (l *Limiter) Reserve(ctx context.Context, req Request, maxWait time.Duration) (Decision, error) {
	keys := []string{l.keys.Pause(), l.keys.Adapt(req.App, req.API)}
	args := []any{maxWait.Microseconds(), 0}
	add := func(key string, lim Limit, cost, maxCost int, adaptive bool, name string) {
		if !lim.On() || cost <= 0 {
			return
		}
		iv := lim.interval(maxCost)
		a := "0"
		if adaptive {
			a = "1"
		}
		keys = append(keys, key)
		args = append(args, iv.Microseconds(), (iv * time.Duration(maxCost)).Microseconds(), cost, a, name)
	}
	add(l.keys.Fleet(), req.Fleet, 1, 1, false, LimitFleet)
	add(l.keys.Calls(req.App, req.API), req.Calls, 1, 1, true, LimitCalls)
	add(l.keys.Recipients(req.App), req.Recipients, min(req.Cost, req.Recipients.N), min(MaxCost, req.Recipients.N/2), false, LimitRecipients)
	args[1] = len(keys) - 2 // the limits that apply

	res, err := reserveScript.Run(ctx, l.rdb, keys, args...).Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("ratelimit: %w", err)
	}
	if len(res) != 4 {
		return Decision{}, errors.New("ratelimit: malformed answer from Redis")
	}
	allowed, _ := res[0].(int64)
	wait, _ := res[1].(int64)
	which, _ := res[2].(string)
	f, _ := res[3].(int64)
	return Decision{Allowed: allowed == 1, Wait: time.Duration(wait) * time.Microsecond, Limit: which,
		Factor: float64(f) / 1e6}, nil
}

// adaptScript scales the factor in hash KEYS[1].
//
// ARGV[1]: "down" or "up". Down: factor × ARGV[2], not below ARGV[3], at
// most once per ARGV[4] µs. Up: + ARGV[2], not above 1, only ARGV[3] µs
// after the last decrease and at most once per ARGV[4] µs. Answers the
// factor ×1e6 and whether it changed.
var adaptScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local h = redis.call('HMGET', KEYS[1], 'f', 'down', 'up')
local f = tonumber(h[1] or '1')
local down = tonumber(h[2] or '0')
local up = tonumber(h[3] or '0')
local step = tonumber(ARGV[2])
local changed = 0
if ARGV[1] == 'down' then
	if now - down >= tonumber(ARGV[4]) then
		f = math.max(f * step, tonumber(ARGV[3]))
		redis.call('HSET', KEYS[1], 'f', tostring(f), 'down', string.format('%.0f', now))
		changed = 1
	end
elseif f < 1 and now - down >= tonumber(ARGV[3]) and now - up >= tonumber(ARGV[4]) then
	f = math.min(f + step, 1)
	redis.call('HSET', KEYS[1], 'f', tostring(f), 'up', string.format('%.0f', now))
	changed = 1
end
if f >= 1 then
	redis.call('DEL', KEYS[1])
else
	redis.call('PEXPIRE', KEYS[1], 3600000)
end
return {math.floor(f * 1000000), changed}`)

// Throttled lowers the rate of app's calls to api for the whole fleet,
// because DingTalk throttled one although the limiter allowed it. Answers
// the new factor and whether it changed (one burst of throttled answers
// lowers it once).
func (l *Limiter) Throttled(ctx context.Context, app, api string) (float64, bool, error) {
	return l.adapt(ctx, app, api, "down", decreaseFactor, minFactor, decreaseEvery)
}

// Succeeded lets a lowered rate of app's calls to api recover step by
// step. Callers need it only while the factor they last saw is below 1.
func (l *Limiter) Succeeded(ctx context.Context, app, api string) (float64, bool, error) {
	return l.adapt(ctx, app, api, "up", recoverStep, float64(recoverAfter.Microseconds()), recoverEvery)
}

func (l *Limiter) adapt(ctx context.Context, app, api, dir string, step, bound float64, every time.Duration) (float64, bool, error) {
	res, err := adaptScript.Run(ctx, l.rdb, []string{l.keys.Adapt(app, api)}, dir, step, bound, every.Microseconds()).Slice()
	if err != nil {
		return 0, false, fmt.Errorf("ratelimit: %w", err)
	}
	if len(res) != 2 {
		return 0, false, errors.New("ratelimit: malformed answer from Redis")
	}
	f, _ := res[0].(int64)
	changed, _ := res[1].(int64)
	return float64(f) / 1e6, changed == 1, nil
}

// Pause stops every call of the fleet for d: DingTalk banned our address.
// A longer pause already set stays.
func (l *Limiter) Pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	ms := int64(math.Ceil(float64(d) / float64(time.Millisecond)))
	return l.rdb.Eval(ctx, `
local ttl = redis.call('PTTL', KEYS[1])
if ttl < tonumber(ARGV[1]) then
	redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 0`, []string{l.keys.Pause()}, ms).Err()
}

// holdScript pushes the GCRA state KEYS[1] of a calls limit to ARGV[1] µs
// from now, unless it is further already.
var holdScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local want = now + tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if want > tat then
	redis.call('SET', KEYS[1], string.format('%.0f', want), 'PX', math.floor(tonumber(ARGV[1]) / 1000) + 1000)
end
return 0`)

// Hold keeps the calls of req.App to req.API from the whole fleet waiting
// for d: DingTalk blocked them for that long (a custom robot that sent too
// fast is blocked for 10 minutes). A longer hold already set stays.
func (l *Limiter) Hold(ctx context.Context, req Request, d time.Duration) error {
	if d <= 0 || !req.Calls.On() {
		return nil
	}
	if err := holdScript.Run(ctx, l.rdb, []string{l.keys.Calls(req.App, req.API)}, d.Microseconds()).Err(); err != nil {
		return fmt.Errorf("ratelimit: %w", err)
	}
	return nil
}
