package fake

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dingq/dingq/dingtalk"
)

// DefaultTokenLifetime is the lifetime of a token when Options leave it
// zero: DingTalk's 7200 seconds.
const DefaultTokenLifetime = 7200 * time.Second

// FirstTaskID is the task_id of the first accepted send; each later one is
// one more.
const FirstTaskID int64 = 256271667526

// MaxBodyBytes bounds a request body; a larger one answers 400002.
const MaxBodyBytes = 1 << 20

// App is an app the fake knows. Key, else CorpID, is its id in records.
type App struct {
	// Key and Secret are the appkey/appsecret form of the credentials.
	Key, Secret string
	// CorpID and CorpSecret are the legacy corpid/corpsecret form. Either
	// form may be set, or both; both forms then get the same token.
	CorpID, CorpSecret string
	// AgentID, if non-zero, is the app's agent id: asyncsend_v2 with another
	// agent_id answers 40056. If zero, any agent_id is taken.
	AgentID int64
	// RobotCode is the code of the app's enterprise robot, the robotCode
	// its batch sends must name. If empty, the app's Key, as DingTalk
	// gives an app's own robot.
	RobotCode string
}

// robotCode returns the code of the app's enterprise robot: RobotCode,
// else Key ("" for an app with neither: it has no robot).
func (a App) robotCode() string {
	if a.RobotCode != "" {
		return a.RobotCode
	}
	return a.Key
}

// ID returns the app's id in records: Key, else CorpID.
func (a App) ID() string {
	if a.Key != "" {
		return a.Key
	}
	return a.CorpID
}

// Options configure a Server. A nil *Options means every default.
type Options struct {
	// TokenLifetime is how long a token lives after it was last fetched.
	// If zero (or negative), DefaultTokenLifetime (7200 s, DingTalk's).
	TokenLifetime time.Duration
	// Now tells the time. If nil, time.Now; tests inject a clock so expiry
	// and rate limits need no sleeping.
	Now func() time.Time
	// Limits are the rate limits to enforce, such as &DefaultLimits. If nil,
	// none: every call is taken however fast it comes.
	Limits *Limits
	// NoDailyLimits turns off DingTalk's daily limits, which the fake
	// otherwise always enforces, silently, per app and user and China-time
	// day: the same content to a user twice a day (the second is dropped
	// with code "143106"), and more than DailyMessagesPerUser messages to a
	// user a day (dropped with code "143105").
	NoDailyLimits bool
	// DeliveryTime is how long after the send a task takes to be
	// delivered, as getsendprogress tells: status 1 (processing) and a
	// growing progress_in_percent until then, status 2 (done) and 100 from
	// then on. If zero (or negative), a task is done at once.
	DeliveryTime time.Duration
	// Results say what getsendresult reports of the delivered users. If
	// nil, the zero Results: every delivered user is unread.
	Results *Results
	// SessionPaths are the paths of the session endpoints, which DingTalk
	// does not publish. A path left "" is its default: the
	// dingtalk.DefaultPath…Session constants.
	SessionPaths SessionPaths
	// Robots are the custom group robots the fake knows (AddRobot).
	Robots []dingtalk.Robot
	// RobotWindow is the window of a custom robot's limit: it takes
	// dingtalk.RobotMessagesPerMinute messages in any sliding RobotWindow.
	// It is also the window of RobotUserLimit. If zero (or negative), a
	// minute, as DingTalk's; tests shorten it.
	RobotWindow time.Duration
	// RobotBlock is how long a custom robot that went over its limit is
	// blocked. If zero (or negative), dingtalk.RobotBlock (10 minutes).
	RobotBlock time.Duration
	// RobotUserLimit is how many messages one user takes from one
	// enterprise robot (robot code) in any RobotWindow; the users of a
	// batch send over it are answered in flowControlledStaffIdList and not
	// messaged. DingTalk flow-controls users but does not publish its
	// figure, so the fake has none unless asked: 0 turns it off. It must
	// not be negative.
	RobotUserLimit int
}

func (o *Options) setDefaults() {
	if o.TokenLifetime <= 0 {
		o.TokenLifetime = DefaultTokenLifetime
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.SessionPaths = o.SessionPaths.WithDefaults()
	if o.RobotWindow <= 0 {
		o.RobotWindow = time.Minute
	}
	if o.RobotBlock <= 0 {
		o.RobotBlock = dingtalk.RobotBlock
	}
}

// Server is the fake DingTalk host, an http.Handler. It is safe for
// concurrent use.
type Server struct {
	opts   Options
	routes map[string]route

	mu       sync.Mutex
	byKey    map[string]*App // by App.Key
	byCorp   map[string]*App // by App.CorpID
	tokens   map[string]*token
	byValue  map[string]*token
	fetches  map[string]int // gettoken calls by the appkey or corpid they named
	calls    []Call
	sent     []Sent
	nextTask int64
	faults   []Fault // active, in the order added
	faulted  int     // calls a fault fired on

	limits      Limits
	apiCalls    map[apiKey]*window // calls counted by CallsPerSecond
	ipCalls     *window            // calls counted by CallsPer20s
	bannedUntil time.Time          // the end of the IP ban; zero if none
	throttled   int                // calls answered 90018 by CallsPerSecond
	ipBanned    int                // calls answered the IP ban by CallsPer20s
	// By app: accepted asyncsend_v2 calls in the last second, recipients
	// delivered in the last minute, and what Stats reports of them.
	sends                  map[string]*window
	delivered              map[string]*window
	maxCallsPerSecond      map[string]int
	maxRecipientsPerMinute map[string]int
	dropped                map[string]int // recipients dropped, by app
	droppedByCode          map[string]int // the same, by forbidden_list code
	daily                  map[string]*appDay
	recalled               int // tasks recalled

	results Results

	callbacks    map[string]*registration // by app id
	failedEvents map[string][]failedEvent // by app id, oldest first
	pushed       int                      // events pushed and taken
	pushFailed   int                      // events pushed and not taken
	sessions     map[sessionKey]*session

	robots    map[string]*robot // by access token
	robotSent []RobotSent
	// The enterprise robots' batch sends, and what each user got from each
	// robot code in the last RobotWindow (only with a RobotUserLimit).
	robotBatches []RobotBatch
	robotUsers   map[robotUser]*window
}

// New returns a fake host that knows apps. opts may be nil. It panics on an
// App with neither Key nor CorpID, on Limits or Results that do not
// validate, on SessionPaths that do not start with "/", are under
// /_fake/ or are another endpoint's, and on a negative RobotUserLimit.
func New(apps []App, opts *Options) *Server {
	s := &Server{byKey: map[string]*App{}, byCorp: map[string]*App{}, robots: map[string]*robot{}}
	if opts != nil {
		s.opts = *opts
	}
	s.opts.setDefaults()
	if s.opts.RobotUserLimit < 0 {
		panic("fake: New: RobotUserLimit must be >= 0 (0: no flow control)")
	}
	if l := s.opts.Limits; l != nil {
		if err := l.Validate(); err != nil {
			panic("fake: New: " + err.Error())
		}
		s.limits = *l
	}
	if r := s.opts.Results; r != nil {
		if err := r.Validate(); err != nil {
			panic("fake: New: " + err.Error())
		}
		s.results = *r
	}
	s.routes = s.defaultRoutes()
	s.reset()
	for _, a := range apps {
		s.AddApp(a)
	}
	for _, r := range s.opts.Robots {
		s.AddRobot(r)
	}
	return s
}

// AddApp makes a known to the fake, replacing any app with the same Key or
// CorpID. Tokens already issued stay valid. It panics on an App with neither
// Key nor CorpID.
func (s *Server) AddApp(a App) {
	if a.Key == "" && a.CorpID == "" {
		panic("fake: AddApp: App needs a Key or a CorpID")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, old := range []*App{s.byKey[a.Key], s.byCorp[a.CorpID]} {
		if old != nil {
			delete(s.byKey, old.Key)
			delete(s.byCorp, old.CorpID)
		}
	}
	p := &a
	if a.Key != "" {
		s.byKey[a.Key] = p
	}
	if a.CorpID != "" {
		s.byCorp[a.CorpID] = p
	}
}

// app returns the app whose Key or CorpID is id, or nil. s.mu is held.
func (s *Server) app(id string) *App {
	if a := s.byKey[id]; a != nil {
		return a
	}
	return s.byCorp[id]
}

// Reset forgets every call, send, token and fault, what the limits
// counted (an IP ban included, what each user got today, and what each
// robot sent, its block included, and what each user got from each
// enterprise robot), the robots' messages and batch sends, and the stats,
// and starts task ids again from FirstTaskID, as if the server were new.
// Apps, robots, limits and results stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reset()
}

func (s *Server) reset() {
	s.tokens = map[string]*token{}
	s.byValue = map[string]*token{}
	s.fetches = map[string]int{}
	s.calls = nil
	s.sent = nil
	s.nextTask = FirstTaskID
	s.faults = nil
	s.faulted = 0
	s.apiCalls = map[apiKey]*window{}
	s.ipCalls = &window{span: perIPSpan}
	s.bannedUntil = time.Time{}
	s.throttled, s.ipBanned = 0, 0
	s.sends = map[string]*window{}
	s.delivered = map[string]*window{}
	s.maxCallsPerSecond = map[string]int{}
	s.maxRecipientsPerMinute = map[string]int{}
	s.dropped = map[string]int{}
	s.droppedByCode = map[string]int{}
	s.daily = map[string]*appDay{}
	s.recalled = 0
	s.callbacks = map[string]*registration{}
	s.failedEvents = map[string][]failedEvent{}
	s.pushed, s.pushFailed = 0, 0
	s.sessions = map[sessionKey]*session{}
	s.resetRobots()
}

// route is one endpoint of the fake host.
type route struct {
	// method is the only HTTP method the endpoint takes.
	method string
	// handle answers one call; it runs with s.mu held (register and
	// update_call_back release it while they post the check_url event).
	handle func(x *exchange) reply
}

// defaultRoutes is the table of DingTalk endpoints the fake implements.
func (s *Server) defaultRoutes() map[string]route {
	routes := map[string]route{
		dingtalk.PathGetToken:         {method: http.MethodGet, handle: s.getToken},
		dingtalk.PathAsyncSendV2:      {method: http.MethodPost, handle: s.asyncSendV2},
		dingtalk.PathGetSendProgress:  {method: http.MethodPost, handle: s.getSendProgress},
		PathGetSendResult:             {method: http.MethodPost, handle: s.getSendResult},
		dingtalk.PathRecall:           {method: http.MethodPost, handle: s.recall},
		dingtalk.PathRegisterCallback: {method: http.MethodPost, handle: s.registerCallback},
		dingtalk.PathUpdateCallback:   {method: http.MethodPost, handle: s.updateCallback},
		dingtalk.PathGetCallback:      {method: http.MethodGet, handle: s.getCallback},
		dingtalk.PathDeleteCallback:   {method: http.MethodGet, handle: s.deleteCallback},
		dingtalk.PathCallbackFailed:   {method: http.MethodGet, handle: s.callbackFailed},
		dingtalk.PathRobotSend:        {method: http.MethodPost, handle: s.robotSend},
		dingtalk.PathAccessTokenV1:    {method: http.MethodPost, handle: s.accessTokenV1},
		dingtalk.PathRobotBatchSend:   {method: http.MethodPost, handle: s.robotBatchSend},
	}
	s.addSessionRoutes(routes)
	return routes
}

// exchange is one call being answered.
type exchange struct {
	req  *http.Request
	body []byte
	// token is the access token the call carries, "" if none: the
	// access_token query parameter on the legacy host, the
	// x-acs-dingtalk-access-token header on the new one (/v1.0/).
	token string
	app   string // the app the call was for, "" if unknown
	now   time.Time
	fault string // the fault that fired on the call, described; "" if none
	limit string // the limit that refused the call, as Call.Limit names it
	// hide are more values the record must not show: a new-host token
	// request's appSecret, which travels in the body, right or wrong.
	hide []string
}

// topAPIPrefix starts the paths whose answers carry a request_id and wrap
// token errors in errcode 88.
const topAPIPrefix = "/topapi/"

func isTopAPI(path string) bool { return strings.HasPrefix(path, topAPIPrefix) }

// ServeHTTP answers one call as DingTalk's legacy host would, or as a
// fault or a limit says, and records it. A call a fault answers is not
// counted by the limits. A call a fault closes, or kept waiting until its
// context ended, gets no answer at all: ServeHTTP panics with http.ErrAbortHandler,
// which net/http's server takes as "drop the connection" (it also ends a
// hung call when the server shuts down, if the server's BaseContext ends).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, adminPrefix) {
		s.serveAdmin(w, r)
		return
	}
	body, readErr := readBody(w, r)
	x := &exchange{req: r, body: body, token: r.URL.Query().Get("access_token")}
	if isV1(r.URL.Path) {
		// The new host takes the token from a header; a query's
		// access_token means nothing to it.
		x.token = r.Header.Get(headerTokenV1)
	}

	s.mu.Lock()
	f := s.fireFault(r.URL.Path)
	s.mu.Unlock()
	if f != nil {
		x.fault = f.String()
		// Waiting happens without the lock, so other calls go on meanwhile.
		if f.Latency > 0 && !sleep(r.Context(), time.Duration(f.Latency)) {
			x.fault += " (client gave up)"
			s.recordUnanswered(x, reply{})
			panic(http.ErrAbortHandler) // not even an empty answer
		}
		if f.Hang {
			s.recordUnanswered(x, reply{})
			<-r.Context().Done()
			panic(http.ErrAbortHandler)
		}
		if f.Close {
			s.recordUnanswered(x, reply{})
			panic(http.ErrAbortHandler) // the connection closes, nothing written
		}
		if f.answers() {
			rp := s.recordUnanswered(x, faultReply(f))
			rp.write(w)
			return
		}
	}

	rt, known := s.routes[r.URL.Path]
	routed := known && rt.method == r.Method
	s.mu.Lock()
	s.begin(x)
	rp, limited := s.limit(x, routed)
	switch {
	case limited:
	case !routed && isTopAPI(r.URL.Path):
		rp = reply{code: codeInvalidMethod, msg: "Invalid method"}
	case !routed && isV1(r.URL.Path):
		rp = v1NotFound()
	case !routed:
		rp = notFound()
	case readErr != nil && isV1(r.URL.Path):
		rp = v1Error(http.StatusBadRequest, codeV1InvalidParameter, readErr.Error())
	case readErr != nil:
		rp = reply{code: codeBadParam, msg: "参数错误: " + readErr.Error()}
	default:
		rp = rt.handle(x)
	}
	rp = s.finish(x, rp)
	s.mu.Unlock()

	rp.write(w)
}

// begin stamps x with the time and the app owning its token. s.mu is held.
func (s *Server) begin(x *exchange) {
	x.now = s.opts.Now()
	if t := s.byValue[x.token]; x.token != "" && t != nil {
		x.app = t.app
	}
}

// finish adds a request_id to a topapi answer and records the call. s.mu
// is held.
func (s *Server) finish(x *exchange, rp reply) reply {
	if isTopAPI(x.req.URL.Path) && rp.body == nil {
		rp.requestID = newRequestID()
	}
	s.record(x, rp)
	return rp
}

// recordUnanswered records x, a call a fault answered with rp in place of
// its endpoint (a zero rp if it never answered), and returns rp as sent. A
// call to either token endpoint still counts as a fetch. It takes s.mu.
func (s *Server) recordUnanswered(x *exchange, rp reply) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.begin(x)
	if rt, ok := s.routes[x.req.URL.Path]; ok && rt.method == x.req.Method {
		switch x.req.URL.Path {
		case dingtalk.PathGetToken:
			s.countFetch(x)
		case dingtalk.PathAccessTokenV1:
			s.countFetchV1(x)
		}
	}
	return s.finish(x, rp)
}

// readBody reads at most MaxBodyBytes of r's body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, errors.New("request body larger than 1 MiB")
	case err != nil:
		return nil, errors.New("reading request body: " + err.Error())
	}
	return b, nil
}
