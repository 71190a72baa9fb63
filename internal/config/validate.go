package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

var (
	keyPrefixRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)
	appNameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
)

const (
	maxTimeout     = 5 * time.Minute
	maxConcurrency = 1000
	maxMaxRetry    = 1000
	minTokenLen    = 16
	maxUINameLen   = 64
	minRetention   = time.Minute
	// asynq's GroupGracePeriod is at least a second.
	minCoalesceWindow   = time.Second
	maxCoalesceWindow   = time.Minute
	maxCoalesceMaxDelay = 10 * time.Minute
)

// Validate checks every rule and returns nil or all the problems joined
// with errors.Join, each a *FieldError naming the key at fault. A zero
// value that has a default counts as that default, so Validate agrees with
// the defaults documented on each field; it does not change c.
func (c *Config) Validate() error {
	d := *c
	d.DingTalk.Apps = slices.Clone(c.DingTalk.Apps)
	d.DingTalk.Robots = slices.Clone(c.DingTalk.Robots)
	d.API.Tokens = slices.Clone(c.API.Tokens)
	d.API.UIUsers = slices.Clone(c.API.UIUsers)
	d.setDefaults()

	var v validator
	d.Redis.validate(&v)
	d.DingTalk.validate(&v)
	d.Worker.validate(&v)
	d.API.validate(&v)
	d.Callback.validate(&v)
	d.DingTalk.SessionPaths.validate(&v)
	d.Outcome.validate(&v)
	d.Log.validate(&v)
	return errors.Join(v.errs...)
}

// validator collects FieldErrors.
type validator struct {
	errs []error
}

func (v *validator) add(key, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Key: key, Message: fmt.Sprintf(format, args...)})
}

func (r *Redis) validate(v *validator) {
	switch {
	case r.Sentinel.On() && r.Cluster.On():
		v.add("redis.sentinel", "set redis.sentinel or redis.cluster, not both")
	case r.Addr != "" && r.Sentinel.On():
		v.add("redis.addr", "set redis.addr or redis.sentinel, not both (an empty DINGQ_REDIS_ADDR= clears it)")
	case r.Addr != "" && r.Cluster.On():
		v.add("redis.addr", "set redis.addr or redis.cluster, not both (an empty DINGQ_REDIS_ADDR= clears it)")
	case !r.Sentinel.On() && !r.Cluster.On() && !isHostPort(r.Addr):
		v.add("redis.addr", "%q is not host:port", r.Addr)
	}
	if r.Sentinel.On() {
		if r.Sentinel.MasterName == "" {
			v.add("redis.sentinel.master_name", "is required with redis.sentinel.addrs")
		}
		if len(r.Sentinel.Addrs) == 0 {
			v.add("redis.sentinel.addrs", "at least one sentinel is required with redis.sentinel.master_name")
		}
		hostPorts(v, "redis.sentinel.addrs", r.Sentinel.Addrs)
	}
	if r.Cluster.On() {
		hostPorts(v, "redis.cluster.addrs", r.Cluster.Addrs)
		if r.DB != 0 {
			v.add("redis.db", "must be 0 with redis.cluster: a cluster has only database 0")
		}
	}
	if r.DB < 0 {
		v.add("redis.db", "must be >= 0")
	}
	if !keyPrefixRE.MatchString(r.KeyPrefix) {
		v.add("redis.key_prefix", "%q may hold only letters, digits, '_', '.' and '-'", r.KeyPrefix)
	}
}

// hostPorts checks that every address of the list at key is host:port.
func hostPorts(v *validator, key string, addrs []string) {
	for i, a := range addrs {
		if !isHostPort(a) {
			v.add(key+"["+strconv.Itoa(i)+"]", "%q is not host:port", a)
		}
	}
}

func (d *DingTalk) validate(v *validator) {
	u, err := url.Parse(d.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add("dingtalk.base_url", "%q is not an absolute http or https URL", d.BaseURL)
	}
	if u, err := url.Parse(d.APIBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add("dingtalk.api_base_url", "%q is not an absolute http or https URL", d.APIBaseURL)
	}
	if d.Timeout <= 0 || d.Timeout > maxTimeout {
		v.add("dingtalk.timeout", "must be > 0 and <= %v", maxTimeout)
	}
	if len(d.Apps) == 0 {
		v.add("dingtalk.apps", "at least one app is required")
	}
	nonNegative(v, "dingtalk.rate_limit.calls_per_20s", d.RateLimit.CallsPer20s)
	seen := make(map[string]bool, len(d.Apps))
	for i := range d.Apps {
		a := &d.Apps[i]
		prefix := "dingtalk.apps[" + strconv.Itoa(i) + "]"
		a.validate(v, prefix)
		if a.Name != "" && seen[a.Name] {
			v.add(prefix+".name", "%q is used twice", a.Name)
		}
		seen[a.Name] = true
	}
	robots := make(map[string]bool, len(d.Robots))
	hooks := map[string]string{} // access token → its key
	for i := range d.Robots {
		r := &d.Robots[i]
		prefix := "dingtalk.robots[" + strconv.Itoa(i) + "]"
		r.validate(v, prefix, d.Apps)
		for j, w := range r.Webhooks {
			key := prefix + ".webhooks[" + strconv.Itoa(j) + "].access_token"
			if first, dup := hooks[w.AccessToken]; dup && w.AccessToken != "" {
				// Two limits on one webhook let it take twice DingTalk's
				// 20 a minute, and get it blocked.
				v.add(key, "is the same webhook as %s", first)
				continue
			}
			hooks[w.AccessToken] = key
		}
		if r.Name != "" && robots[r.Name] {
			v.add(prefix+".name", "%q is used twice", r.Name)
		}
		robots[r.Name] = true
	}
}

const maxRobotMessages = 1000

func (r *Robot) validate(v *validator, prefix string, apps []App) {
	switch {
	case r.Name == "":
		v.add(prefix+".name", "is required")
	case !appNameRE.MatchString(r.Name):
		v.add(prefix+".name", "%q must be 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit", r.Name)
	}
	switch {
	case len(r.Webhooks) == 0 && r.App == "":
		v.add(prefix, "give webhooks (a custom group robot) or app (an enterprise robot)")
	case len(r.Webhooks) > 0 && r.App != "":
		v.add(prefix, "give webhooks (a custom group robot) or app (an enterprise robot), not both")
	}
	for j, w := range r.Webhooks {
		switch {
		case w.AccessToken == "":
			v.add(prefix+".webhooks["+strconv.Itoa(j)+"].access_token", "is required")
		case strings.Contains(w.AccessToken, "://") || strings.Contains(w.AccessToken, "access_token="):
			v.add(prefix+".webhooks["+strconv.Itoa(j)+"].access_token", "give only the access_token of the webhook's URL, not the URL")
		}
	}
	if r.App != "" {
		i := slices.IndexFunc(apps, func(a App) bool { return a.Name == r.App })
		switch {
		case i < 0:
			v.add(prefix+".app", "%q is not one of dingtalk.apps", r.App)
		case apps[i].AppKey == "":
			v.add(prefix+".app", "app %q has no app_key: an enterprise robot's token takes app_key and app_secret", r.App)
		}
	} else if r.RobotCode != "" {
		v.add(prefix+".robot_code", "is for an enterprise robot (with app)")
	}
	if r.RateLimit.Messages < 1 || r.RateLimit.Messages > maxRobotMessages {
		v.add(prefix+".rate_limit.messages", "must be 1 to %d", maxRobotMessages)
	}
	if r.RateLimit.Per <= 0 {
		v.add(prefix+".rate_limit.per", "must be > 0")
	}
}

func (a *App) validate(v *validator, prefix string) {
	switch {
	case a.Name == "":
		v.add(prefix+".name", "is required")
	case !appNameRE.MatchString(a.Name):
		v.add(prefix+".name", "%q must be 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit", a.Name)
	}
	if a.AgentID <= 0 {
		v.add(prefix+".agent_id", "must be > 0")
	}
	appForm := a.AppKey != "" || a.AppSecret != ""
	corpForm := a.CorpID != "" || a.CorpSecret != ""
	switch {
	case !appForm && !corpForm:
		v.add(prefix, "give app_key and app_secret, or corp_id and corp_secret")
	case appForm && corpForm:
		v.add(prefix, "give app_key and app_secret, or corp_id and corp_secret, not both")
	case a.AppKey == "" && a.AppSecret != "":
		v.add(prefix+".app_key", "is required with app_secret")
	case a.AppKey != "" && a.AppSecret == "":
		v.add(prefix+".app_secret", "is required with app_key")
	case a.CorpID == "" && a.CorpSecret != "":
		v.add(prefix+".corp_id", "is required with corp_secret")
	case a.CorpID != "" && a.CorpSecret == "":
		v.add(prefix+".corp_secret", "is required with corp_id")
	}
	nonNegative(v, prefix+".rate_limit.calls_per_second", a.RateLimit.CallsPerSecond)
	nonNegative(v, prefix+".rate_limit.recipients_per_minute", a.RateLimit.RecipientsPerMinute)
}

// nonNegative checks an optional limit: absent or >= 0 (0 turns it off).
func nonNegative(v *validator, key string, p *int) {
	if p != nil && *p < 0 {
		v.add(key, "must be >= 0 (0 turns the limit off), got %d", *p)
	}
}

func (w *Worker) validate(v *validator) {
	if w.Concurrency < 1 || w.Concurrency > maxConcurrency {
		v.add("worker.concurrency", "must be 1 to %d", maxConcurrency)
	}
	if w.MaxRetry < 0 || w.MaxRetry > maxMaxRetry {
		v.add("worker.max_retry", "must be 0 (the default) to %d", maxMaxRetry)
	}
	if w.RetryBaseDelay <= 0 {
		v.add("worker.retry_base_delay", "must be > 0")
	}
	if w.MaxLimitWait <= 0 || w.MaxLimitWait > time.Minute {
		v.add("worker.max_limit_wait", "must be > 0 and <= 1m")
	}
	if w.RetryMaxDelay < w.RetryBaseDelay {
		v.add("worker.retry_max_delay", "%v is less than worker.retry_base_delay (%v)", w.RetryMaxDelay, w.RetryBaseDelay)
	}
	if w.ShutdownTimeout <= 0 {
		v.add("worker.shutdown_timeout", "must be > 0")
	}
	if w.ResultsDelay <= 0 {
		v.add("worker.results_delay", "must be > 0")
	}
	if w.ResultsMaxDelay < w.ResultsDelay {
		v.add("worker.results_max_delay", "%v is less than worker.results_delay (%v)", w.ResultsMaxDelay, w.ResultsDelay)
	}
	if w.ResendDelay < 0 {
		v.add("worker.resend_delay", "must be >= 0")
	}
	if w.CoalesceWindow < minCoalesceWindow || w.CoalesceWindow > maxCoalesceWindow {
		v.add("worker.coalesce_window", "must be >= %v and <= %v", minCoalesceWindow, maxCoalesceWindow)
	} else if w.CoalesceMaxDelay < w.CoalesceWindow {
		v.add("worker.coalesce_max_delay", "%v is less than worker.coalesce_window (%v)", w.CoalesceMaxDelay, w.CoalesceWindow)
	}
	if w.CoalesceMaxDelay > maxCoalesceMaxDelay {
		v.add("worker.coalesce_max_delay", "must be <= %v", maxCoalesceMaxDelay)
	}
	if w.MetricsListen != "" && !isHostPort(w.MetricsListen) {
		v.add("worker.metrics_listen", "%q is not host:port", w.MetricsListen)
	}
}

func (a *API) validate(v *validator) {
	if !isHostPort(a.Listen) {
		v.add("api.listen", "%q is not host:port", a.Listen)
	} else if len(a.Tokens) == 0 && !isLoopback(a.Listen) {
		v.add("api.tokens", "required when api.listen (%s) is not a loopback address", a.Listen)
	}
	for i, t := range a.Tokens {
		if utf8.RuneCountInString(t) < minTokenLen {
			v.add("api.tokens["+strconv.Itoa(i)+"]", "must be at least %d characters", minTokenLen)
		}
	}
	if a.MaxBodyBytes <= 0 {
		v.add("api.max_body_bytes", "must be > 0")
	}
	if a.MaxRecipients < 1 || a.MaxRecipients > maxMaxRecipients {
		v.add("api.max_recipients", "must be 1 to %d", maxMaxRecipients)
	}
	seen := make(map[string]bool, len(a.UIUsers))
	for i, u := range a.UIUsers {
		key := "api.ui_users[" + strconv.Itoa(i) + "]"
		switch {
		case u.Name == "":
			v.add(key+".name", "is required")
		case utf8.RuneCountInString(u.Name) > maxUINameLen || strings.ContainsAny(u.Name, ":\r\n"):
			v.add(key+".name", "must be 1 to %d characters, without ':'", maxUINameLen)
		case seen[u.Name]:
			v.add(key+".name", "%q is already a user", u.Name)
		}
		seen[u.Name] = true
		if utf8.RuneCountInString(u.Password) < minTokenLen {
			v.add(key+".password", "must be at least %d characters", minTokenLen)
		}
	}
	if a.UIPrometheusURL != "" && !absoluteHTTP(a.UIPrometheusURL) {
		v.add("api.ui_prometheus_url", "%q is not an absolute http or https URL", a.UIPrometheusURL)
	}
}

func (o *Outcome) validate(v *validator) {
	if o.Retention < minRetention {
		v.add("outcome.retention", "must be >= %v", minRetention)
	}
}

func (l *Log) validate(v *validator) {
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		v.add("log.level", "%q is not one of debug, info, warn, error", l.Level)
	}
	switch l.Format {
	case "json", "console":
	default:
		v.add("log.format", "%q is not one of json, console", l.Format)
	}
}

// isHostPort reports whether s is host:port with a numeric port. The host
// may be empty (all interfaces).
func isHostPort(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	_, err = strconv.ParseUint(port, 10, 16)
	return err == nil
}

// isLoopback reports whether hostport's host is a loopback address or
// localhost. An empty host means every interface, so it is not.
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
