package fake

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/dingq/dingq/dingtalk"
)

// DailyMessagesPerUser is how many of an app's messages a user gets in one
// day (China time); DingTalk silently drops the next ones with code
// "143105" (dingtalk.ForbiddenDaily).
const DailyMessagesPerUser = 500

// chinaOffset is China Standard Time's offset from UTC: DingTalk's days
// start at midnight in Beijing.
const chinaOffset = 8 * 60 * 60

// chinaDay numbers t's calendar day in China time (UTC+8), from 1970-01-01.
func chinaDay(t time.Time) int32 {
	sec := t.Unix() + chinaOffset
	day := sec / 86400
	if sec < 0 && sec%86400 != 0 {
		day-- // floor, for times before 1970
	}
	return int32(day)
}

// appDay is what one app delivered to each user on one day: the hashes of
// the distinct contents each user got. As a user never gets the same
// content twice a day, the number of hashes is also the number of the
// app's messages the user got that day. Most users get one message a day,
// so the first hash sits in a map of its own: one map entry of 24 bytes a
// user, the user id being shared with the recorded send; only users who
// got more have an entry in more.
type appDay struct {
	day   int32
	first map[string]uint64   // the first content each user got
	more  map[string][]uint64 // the later ones, if any
}

// today returns app's deliveries of now's day (China time), forgetting
// those of an earlier day. A clock going back to an earlier day still
// counts in the later one. s.mu is held.
func (s *Server) today(app string, now time.Time) *appDay {
	d := chinaDay(now)
	a := s.daily[app]
	if a == nil || d > a.day {
		a = &appDay{day: d, first: map[string]uint64{}, more: map[string][]uint64{}}
		s.daily[app] = a
	}
	return a
}

// deliver delivers content (its hash) to user unless a daily limit drops
// it: it answers "" and counts the message if delivered, else the drop's
// forbidden_list code: dingtalk.ForbiddenSameContent if the user already
// got that content today, dingtalk.ForbiddenDaily if it already got
// DailyMessagesPerUser messages.
func (a *appDay) deliver(user string, content uint64) string {
	first, ok := a.first[user]
	if !ok {
		a.first[user] = content
		return ""
	}
	more := a.more[user]
	switch {
	case first == content || slices.Contains(more, content):
		return dingtalk.ForbiddenSameContent
	case 1+len(more) >= DailyMessagesPerUser:
		return dingtalk.ForbiddenDaily
	}
	a.more[user] = append(more, content)
	return ""
}

// contentHash hashes a message's canonical JSON (as re-encoded from its
// decoded form, so spacing and field order of the body do not matter).
func contentHash(m dingtalk.Message) uint64 {
	b, err := json.Marshal(m)
	if err != nil {
		// A decoded Message always encodes; hash what is left anyway.
		b = []byte(err.Error())
	}
	return fnv1a(fnvOffset, b)
}
