package token

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/redis/go-redis/v9"
)

// Keys names the Redis keys of the shared cache. Every key of an app holds
// the app's name in braces, so all of them share one Redis Cluster slot.
type Keys struct{ prefix string }

func newKeys(prefix string) Keys { return Keys{prefix: prefix} }

// Token is the hash holding app's token: token, expires_at (Unix ms), life
// (ms), id (the app key or corp id it belongs to) and gen, which grows with
// every write.
func (k Keys) Token(app string) string { return k.prefix + ":token:{" + app + "}" }

// Lock is held by the one process fetching app's token.
func (k Keys) Lock(app string) string { return k.prefix + ":token:{" + app + "}:lock" }

// Refused records, for a while, that DingTalk refused app's credentials.
func (k Keys) Refused(app string) string { return k.prefix + ":token:{" + app + "}:refused" }

// shared is the Redis half of a Cache.
type shared struct {
	rdb  redis.UniversalClient
	keys Keys
}

// sharedToken is a token as Redis holds it.
type sharedToken struct {
	value     string
	expiresAt time.Time
	life      time.Duration
	id        string
	gen       int64
}

// refusal is a refusal of an app's credentials as Redis holds it.
type refusal struct {
	cred string // credHash of the refused credentials
	err  *dingtalk.Error
	ttl  time.Duration
}

// state is what Redis holds for an app.
type state struct {
	tok     *sharedToken // nil if none
	gen     int64        // of the token hash, even when its token was dropped
	refused *refusal     // nil if none
}

// read returns app's shared state.
func (s *shared) read(ctx context.Context, app string) (*state, error) {
	var hash *redis.MapStringStringCmd
	var ref *redis.StringCmd
	var ttl *redis.DurationCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		hash = p.HGetAll(ctx, s.keys.Token(app))
		ref = p.Get(ctx, s.keys.Refused(app))
		ttl = p.PTTL(ctx, s.keys.Refused(app))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	st := &state{}
	h := hash.Val()
	st.gen, _ = strconv.ParseInt(h["gen"], 10, 64)
	if h["token"] != "" {
		exp, err1 := strconv.ParseInt(h["expires_at"], 10, 64)
		life, err2 := strconv.ParseInt(h["life"], 10, 64)
		if err1 == nil && err2 == nil {
			st.tok = &sharedToken{value: h["token"], expiresAt: time.UnixMilli(exp), life: time.Duration(life) * time.Millisecond,
				id: h["id"], gen: st.gen}
		}
	}
	if b, err := ref.Bytes(); err == nil {
		var r refusalJSON
		if json.Unmarshal(b, &r) == nil && r.Err != nil {
			st.refused = &refusal{cred: r.Cred, err: r.Err, ttl: ttl.Val()}
		}
	}
	return st, nil
}

// refusalJSON is the value of the Refused key.
type refusalJSON struct {
	Cred string          `json:"cred"`
	Err  *dingtalk.Error `json:"error"`
}

// credHash identifies credentials without revealing the secret, so a
// refusal of old credentials does not hold back fixed ones.
func credHash(c dingtalk.Credentials) string {
	sum := sha256.Sum256([]byte(c.AppKey + "\x00" + c.AppSecret + "\x00" + c.CorpID + "\x00" + c.CorpSecret))
	return hex.EncodeToString(sum[:8])
}

// refuse records that DingTalk refused the credentials hashed as cred.
func (s *shared) refuse(ctx context.Context, app, cred string, de *dingtalk.Error, ttl time.Duration) error {
	b, err := json.Marshal(refusalJSON{Cred: cred, Err: de})
	if err != nil {
		return err
	}
	return s.rdb.Set(ctx, s.keys.Refused(app), b, ttl).Err()
}

// lock tries to take app's fetch lock for ttl. It answers the owner value
// to unlock with, and whether the lock was taken.
func (s *shared) lock(ctx context.Context, app string, ttl time.Duration) (string, bool, error) {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails: crypto/rand.Read crashes the program instead
	owner := hex.EncodeToString(b)
	ok, err := s.rdb.SetNX(ctx, s.keys.Lock(app), owner, ttl).Result()
	return owner, ok, err
}

// unlockScript deletes KEYS[1] if it still holds ARGV[1].
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0`)

// unlock releases app's fetch lock if owner still holds it.
func (s *shared) unlock(ctx context.Context, app, owner string) error {
	return unlockScript.Run(ctx, s.rdb, []string{s.keys.Lock(app)}, owner).Err()
}

// writeScript writes a token into the hash KEYS[1] only if its gen is still
// ARGV[1], the gen read before the fetch: a token fetched under a lock that
// expired meanwhile never replaces the one fetched by the lock's next
// holder. It answers {1} when written, else {0, token, expires_at, life,
// id, gen} of the hash.
//
// ARGV: gen, token, expires_at (ms), life (ms), id, ttl (ms).
var writeScript = redis.NewScript(`
local gen = tonumber(redis.call('HGET', KEYS[1], 'gen') or '0')
if gen ~= tonumber(ARGV[1]) then
	local h = redis.call('HMGET', KEYS[1], 'token', 'expires_at', 'life', 'id')
	return {0, h[1] or '', h[2] or '0', h[3] or '0', h[4] or '', gen}
end
redis.call('HSET', KEYS[1], 'token', ARGV[2], 'expires_at', ARGV[3], 'life', ARGV[4], 'id', ARGV[5], 'gen', gen + 1)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {1}`)

// keepAfterExpiry is how long a token hash outlives its token, so its gen
// still fences a late writer.
const keepAfterExpiry = time.Minute

// write shares tok for app, written under the gen read before the fetch.
// It answers nil when tok was written, else the newer shared token that
// stays.
func (s *shared) write(ctx context.Context, app string, gen int64, id string, tok *dingtalk.Token, now time.Time) (*sharedToken, error) {
	ttl := tok.ExpiresAt.Sub(now) + keepAfterExpiry
	res, err := writeScript.Run(ctx, s.rdb, []string{s.keys.Token(app)}, gen, tok.AccessToken,
		tok.ExpiresAt.UnixMilli(), tok.ExpiresIn.Milliseconds(), id, ttl.Milliseconds()).Slice()
	if err != nil {
		return nil, err
	}
	if len(res) < 6 {
		return nil, nil
	}
	str := func(v any) string { s, _ := v.(string); return s }
	exp, _ := strconv.ParseInt(str(res[2]), 10, 64)
	life, _ := strconv.ParseInt(str(res[3]), 10, 64)
	cur := &sharedToken{value: str(res[1]), expiresAt: time.UnixMilli(exp), life: time.Duration(life) * time.Millisecond, id: str(res[4])}
	cur.gen, _ = res[5].(int64)
	if cur.value == "" || !now.Before(cur.expiresAt) {
		// The newer writer's token was dropped since, or has expired: ours
		// is the better one, but the hash is not ours to write; use ours
		// here until the next load.
		return nil, nil
	}
	return cur, nil
}

// invalidateScript drops the token of hash KEYS[1] if it is still ARGV[1],
// keeping gen.
var invalidateScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
	return redis.call('HDEL', KEYS[1], 'token', 'expires_at', 'life', 'id')
end
return 0`)

// invalidate drops app's shared token if it is still token.
func (s *shared) invalidate(ctx context.Context, app, token string) error {
	return invalidateScript.Run(ctx, s.rdb, []string{s.keys.Token(app)}, token).Err()
}
