package fake

import "fmt"

// Results say what getsendresult reports of the users a send delivered
// (those no limit dropped): the fraction of them that are invalid user
// ids, forbidden by DingTalk (codes "143105" and "143106"), failed, and of
// the rest, read. Each user's outcome, its [Fate], is decided by a hash of
// its user id alone, so a user has the same fate in every task and tests
// can tell the expected lists with [Results.Fate]. The zero Results make
// every delivered user unread. Set them with [Options], with
// [Server.SetResults] or with PUT /_fake/results; their JSON names are
// those of their tags. A task keeps the Results in force when it was
// sent.
type Results struct {
	// Invalid is the fraction of users in invalid_user_id_list.
	Invalid float64 `json:"invalid"`
	// ForbiddenDaily is the fraction of users forbidden with code "143105"
	// (dingtalk.ForbiddenDaily): in forbidden_user_id_list and
	// forbidden_list.
	ForbiddenDaily float64 `json:"forbidden_daily"`
	// ForbiddenSame is the fraction of users forbidden with code "143106"
	// (dingtalk.ForbiddenSameContent).
	ForbiddenSame float64 `json:"forbidden_same"`
	// Failed is the fraction of users in failed_user_id_list.
	Failed float64 `json:"failed"`
	// Read is, of the users left (delivered), the fraction in
	// read_user_id_list; the others are in unread_user_id_list.
	Read float64 `json:"read"`
}

// Fate is what getsendresult reports of one delivered user.
type Fate string

// The fates of a user, as [Results.Fate] decides them.
const (
	FateInvalid        Fate = "invalid"         // in invalid_user_id_list
	FateForbiddenDaily Fate = "forbidden_daily" // forbidden, code "143105"
	FateForbiddenSame  Fate = "forbidden_same"  // forbidden, code "143106"
	FateFailed         Fate = "failed"          // in failed_user_id_list
	FateRead           Fate = "read"            // in read_user_id_list
	FateUnread         Fate = "unread"          // in unread_user_id_list
)

// sumTolerance forgives the rounding of a sum of fractions that should be 1.
const sumTolerance = 1e-9

// Validate says what is wrong with r, naming the field by its JSON name, as
// in "results: read must be in [0, 1], got 1.5": every fraction must be in
// [0, 1], and invalid + forbidden_daily + forbidden_same + failed at most 1.
func (r Results) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"invalid", r.Invalid}, {"forbidden_daily", r.ForbiddenDaily}, {"forbidden_same", r.ForbiddenSame},
		{"failed", r.Failed}, {"read", r.Read}} {
		if !(f.v >= 0 && f.v <= 1) { // NaN too
			return fmt.Errorf("results: %s must be in [0, 1], got %g", f.name, f.v)
		}
	}
	if sum := r.Invalid + r.ForbiddenDaily + r.ForbiddenSame + r.Failed; sum > 1+sumTolerance {
		return fmt.Errorf("results: invalid + forbidden_daily + forbidden_same + failed must be at most 1, got %g", sum)
	}
	return nil
}

// Fate returns what getsendresult reports of userID when a send delivered
// it. A hash of userID, u in [0, 1), picks it: u < Invalid is FateInvalid;
// then the next ForbiddenDaily is FateForbiddenDaily, the next
// ForbiddenSame FateForbiddenSame, the next Failed FateFailed; any other
// user is delivered, and read if a second hash of userID, independent of
// u, is below Read. Users a limit dropped are reported with the limit's
// code whatever their fate.
func (r Results) Fate(userID string) Fate {
	u := unitHash("", userID)
	switch {
	case u < r.Invalid:
		return FateInvalid
	case u < r.Invalid+r.ForbiddenDaily:
		return FateForbiddenDaily
	case u < r.Invalid+r.ForbiddenDaily+r.ForbiddenSame:
		return FateForbiddenSame
	case u < r.Invalid+r.ForbiddenDaily+r.ForbiddenSame+r.Failed:
		return FateFailed
	case unitHash("read:", userID) < r.Read:
		return FateRead
	default:
		return FateUnread
	}
}

// unitHash maps prefix+s to [0, 1), evenly: FNV-1a 64, mixed so that ids
// differing in their last byte alone land far apart.
func unitHash(prefix, s string) float64 {
	return float64(mix64(fnv1a(fnv1a(fnvOffset, prefix), s))>>11) / (1 << 53)
}

// FNV-1a 64's offset basis and prime.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// fnv1a hashes s into h, an FNV-1a 64 hash so far (fnvOffset to start).
func fnv1a[T string | []byte](h uint64, s T) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// mix64 is MurmurHash3's 64-bit finalizer: every bit of x affects every
// bit of the result.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// SetResults validates r and applies it to the tasks sent from then on;
// tasks already sent keep the Results they were sent with.
func (s *Server) SetResults(r Results) error {
	if err := r.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.results = r
	return nil
}

// Results returns the Results in force; the zero Results if none were set.
func (s *Server) Results() Results {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.results
}
