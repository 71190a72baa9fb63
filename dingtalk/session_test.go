package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

func testSessionRequest() *SessionRequest {
	return &SessionRequest{SessionID: "s1", AppKey: "dingkey", ChatID: "chat1", UserID: "u1"}
}

const testSessionWire = `{"session_id":"s1","app_key":"dingkey","chatid":"chat1","user_id":"u1"}`

func TestGetSession_request(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		wantPath string
	}{
		{name: "default path", path: "", wantPath: DefaultPathGetSession},
		{name: "own path", path: "/seed/getsession", wantPath: "/seed/getsession"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, mux := setup(t)
			var hits atomic.Int32
			mux.HandleFunc(tt.wantPath, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				testMethod(t, r, http.MethodPost)
				testQuery(t, r, map[string]string{"access_token": testToken})
				testHeader(t, r, "Content-Type", "application/json; charset=utf-8")
				testBody(t, r, `{"userid":"u1"}`)
				fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","result":{"session":{"session_id":"s1","chatid":"chat1"}},"request_id":"r1"}`)
			})
			got, err := client.GetSession(context.Background(), testToken, tt.path, "u1")
			if err != nil {
				t.Fatalf("GetSession: got %v, want nil", err)
			}
			if want := `{"session_id":"s1","chatid":"chat1"}`; string(got) != want {
				t.Errorf("session: got %s, want %s", got, want)
			}
			if got, want := hits.Load(), int32(1); got != want {
				t.Errorf("calls: got %d, want %d", got, want)
			}
		})
	}
}

func TestGetSession_answers(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    string
		wantErr bool
	}{
		{name: "string session", body: `{"errcode":0,"result":{"session":"abc"}}`, want: `"abc"`},
		{name: "null session", body: `{"errcode":0,"result":{"session":null}}`, want: `null`},
		{name: "no session", body: `{"errcode":0,"result":{}}`, wantErr: true},
		{name: "no result", body: `{"errcode":0,"errmsg":"ok"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, mux := setup(t)
			mux.HandleFunc(DefaultPathGetSession, func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, tt.body)
			})
			got, err := client.GetSession(context.Background(), testToken, "", "u1")
			if tt.wantErr {
				var te *TransportError
				if !errors.As(err, &te) {
					t.Fatalf("GetSession: got %s, %v (%T), want *TransportError", got, err, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetSession: got %v, want nil", err)
			}
			if string(got) != tt.want {
				t.Errorf("session: got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCreateSession_request(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		wantPath string
		answer   string
		wantID   string
	}{
		{name: "default path", path: "", wantPath: DefaultPathCreateSession,
			answer: `{"errcode":0,"errmsg":"ok","result":{"session_id":"s9"}}`, wantID: "s9"},
		{name: "own path, numeric id", path: "/seed/create", wantPath: "/seed/create",
			answer: `{"errcode":0,"errmsg":"ok","result":{"session_id":123456789012}}`, wantID: "123456789012"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, mux := setup(t)
			var hits atomic.Int32
			mux.HandleFunc(tt.wantPath, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				testMethod(t, r, http.MethodPost)
				testQuery(t, r, map[string]string{"access_token": testToken})
				testHeader(t, r, "Content-Type", "application/json; charset=utf-8")
				testBody(t, r, testSessionWire)
				fmt.Fprint(w, tt.answer)
			})
			id, err := client.CreateSession(context.Background(), testToken, tt.path, testSessionRequest())
			if err != nil {
				t.Fatalf("CreateSession: got %v, want nil", err)
			}
			if id != tt.wantID {
				t.Errorf("session id: got %q, want %q", id, tt.wantID)
			}
			if got, want := hits.Load(), int32(1); got != want {
				t.Errorf("calls: got %d, want %d", got, want)
			}
		})
	}
}

func TestCreateSession_emptyFieldsSent(t *testing.T) {
	client, mux := setup(t)
	mux.HandleFunc(DefaultPathCreateSession, func(w http.ResponseWriter, r *http.Request) {
		testBody(t, r, `{"session_id":"","app_key":"","chatid":"chat1","user_id":"u1"}`)
		fmt.Fprint(w, `{"errcode":0,"result":{"session_id":"s2"}}`)
	})
	id, err := client.CreateSession(context.Background(), testToken, "", &SessionRequest{ChatID: "chat1", UserID: "u1"})
	if err != nil || id != "s2" {
		t.Fatalf("CreateSession: got %q, %v, want s2, nil", id, err)
	}
}

func TestCreateSession_noSessionID(t *testing.T) {
	for _, body := range []string{`{"errcode":0,"result":{}}`, `{"errcode":0,"result":{"session_id":""}}`, `{"errcode":0}`} {
		t.Run(body, func(t *testing.T) {
			client, mux := setup(t)
			mux.HandleFunc(DefaultPathCreateSession, func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, body)
			})
			id, err := client.CreateSession(context.Background(), testToken, "", testSessionRequest())
			var te *TransportError
			if !errors.As(err, &te) {
				t.Fatalf("CreateSession: got %q, %v (%T), want *TransportError", id, err, err)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error %q leaks the token", err)
			}
		})
	}
}

func TestCloseSession(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		wantPath string
		answer   string
		wantErr  bool
	}{
		{name: "errcode 0", answer: `{"errcode":0,"errmsg":"ok"}`},
		{name: "success true", answer: `{"errcode":0,"success":true}`},
		{name: "result.success true", answer: `{"errcode":0,"result":{"success":true}}`},
		{name: "result true", answer: `{"errcode":0,"result":true}`},
		{name: "own path", path: "/seed/close", wantPath: "/seed/close", answer: `{"errcode":0}`},
		{name: "success false", answer: `{"errcode":0,"success":false,"request_id":"r7"}`, wantErr: true},
		{name: "result.success false", answer: `{"errcode":0,"result":{"success":false}}`, wantErr: true},
		{name: "result false", answer: `{"errcode":0,"result":false}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, mux := setup(t)
			wantPath := tt.wantPath
			if wantPath == "" {
				wantPath = DefaultPathCloseSession
			}
			var hits atomic.Int32
			mux.HandleFunc(wantPath, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				testMethod(t, r, http.MethodPost)
				testQuery(t, r, map[string]string{"access_token": testToken})
				testHeader(t, r, "Content-Type", "application/json; charset=utf-8")
				testBody(t, r, testSessionWire)
				fmt.Fprint(w, tt.answer)
			})
			err := client.CloseSession(context.Background(), testToken, tt.path, testSessionRequest())
			if got, want := hits.Load(), int32(1); got != want {
				t.Errorf("calls: got %d, want %d", got, want)
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("CloseSession: got %v, want nil", err)
				}
				return
			}
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("CloseSession: got %v (%T), want *Error", err, err)
			}
			if got, want := de.Path, wantPath; got != want {
				t.Errorf("Path: got %q, want %q", got, want)
			}
		})
	}
}

// sessionCall is one of the session calls, run with a request, for the
// tests they share. GetSession takes only r.UserID.
type sessionCall struct {
	name string
	path string
	call func(c *Client, token, path string, r *SessionRequest) error
}

var sessionCalls = []sessionCall{
	{name: "GetSession", path: DefaultPathGetSession,
		call: func(c *Client, token, path string, r *SessionRequest) error {
			var user string
			if r != nil {
				user = r.UserID
			}
			s, err := c.GetSession(context.Background(), token, path, user)
			if err != nil && s != nil {
				return fmt.Errorf("got session %s with error %w", s, err)
			}
			return err
		}},
	{name: "CreateSession", path: DefaultPathCreateSession,
		call: func(c *Client, token, path string, r *SessionRequest) error {
			id, err := c.CreateSession(context.Background(), token, path, r)
			if err != nil && id != "" {
				return fmt.Errorf("got session id %q with error %w", id, err)
			}
			return err
		}},
	{name: "CloseSession", path: DefaultPathCloseSession,
		call: func(c *Client, token, path string, r *SessionRequest) error {
			return c.CloseSession(context.Background(), token, path, r)
		}},
}

func TestSessionCalls_invalid(t *testing.T) {
	// Close needs a session_id, not a user.
	userField := map[string]string{"GetSession": "userid", "CreateSession": "user_id", "CloseSession": "session_id"}
	for _, sc := range sessionCalls {
		tests := []struct {
			name      string
			token     string
			path      string
			r         *SessionRequest
			wantField string
		}{
			{name: "nil request", token: testToken, r: nil, wantField: userField[sc.name]},
			{name: "no user", token: testToken, r: &SessionRequest{ChatID: "c1"}, wantField: userField[sc.name]},
			{name: "blank user", token: testToken, r: &SessionRequest{ChatID: "c1", UserID: " "}, wantField: userField[sc.name]},
			{name: "relative path", token: testToken, path: "topapi/v2/im/x", r: testSessionRequest(), wantField: "path"},
			{name: "path with query", token: testToken, path: "/x?access_token=y", r: testSessionRequest(), wantField: "path"},
			{name: "no token", token: "", r: testSessionRequest(), wantField: "access_token"},
			{name: "request reported before path and token", token: "", path: "x", r: &SessionRequest{}, wantField: userField[sc.name]},
		}
		switch sc.name {
		case "CreateSession":
			tests = append(tests, struct {
				name      string
				token     string
				path      string
				r         *SessionRequest
				wantField string
			}{name: "blank user, chatid set", token: testToken, r: &SessionRequest{SessionID: "s1", ChatID: "c1"}, wantField: "user_id"})
		case "CloseSession":
			tests = append(tests, struct {
				name      string
				token     string
				path      string
				r         *SessionRequest
				wantField string
			}{name: "no session_id", token: testToken, r: &SessionRequest{ChatID: "c1", UserID: "u1"}, wantField: "session_id"})
		}
		for _, tt := range tests {
			t.Run(sc.name+"/"+tt.name, func(t *testing.T) {
				client, mux := setup(t)
				var hits atomic.Int32
				mux.HandleFunc("/", counted(&hits, `{"errcode":0}`))
				err := sc.call(client, tt.token, tt.path, tt.r)
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("error: got %v (%T), want *ValidationError", err, err)
				}
				if got := ve.Field; got != tt.wantField {
					t.Errorf("Field: got %q, want %q", got, tt.wantField)
				}
				if got, want := Classify(err), ClassPermanent; got != want {
					t.Errorf("Classify: got %v, want %v", got, want)
				}
				if got, want := hits.Load(), int32(0); got != want {
					t.Errorf("calls reaching the server: got %d, want %d", got, want)
				}
				if strings.Contains(err.Error(), testToken) {
					t.Errorf("error %q leaks the token", err)
				}
			})
		}
	}
}

func TestSessionRequest_ValidateFor(t *testing.T) {
	tests := []struct {
		action    string
		r         *SessionRequest
		wantField string
	}{
		{action: SessionGet, r: &SessionRequest{UserID: "u1"}},
		{action: SessionCreate, r: &SessionRequest{UserID: "u1", ChatID: "c1"}},
		{action: SessionClose, r: &SessionRequest{UserID: "u1", SessionID: "s1"}},
		{action: SessionGet, r: &SessionRequest{}, wantField: "user_id"},
		{action: SessionGet, r: nil, wantField: "user_id"},
		{action: SessionCreate, r: &SessionRequest{UserID: "u1", SessionID: "s1"}}, // chatid may be empty, as in the seed
		{action: SessionClose, r: &SessionRequest{SessionID: "s1"}},
		{action: SessionClose, r: &SessionRequest{UserID: "u1", ChatID: "c1"}, wantField: "session_id"},
		{action: "open", r: testSessionRequest(), wantField: "action"},
		{action: "", r: testSessionRequest(), wantField: "action"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%+v", tt.action, tt.r), func(t *testing.T) {
			err := tt.r.ValidateFor(tt.action)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("ValidateFor: got %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("ValidateFor: got %v (%T), want *ValidationError", err, err)
			}
			if got := ve.Field; got != tt.wantField {
				t.Errorf("Field: got %q, want %q", got, tt.wantField)
			}
		})
	}
}

func TestSessionCalls_errors(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		wantCode    int
		wantSubCode string
		wantClass   Class
	}{
		{name: "88 sub_code 40014", body: `{"errcode":88,"sub_code":"40014","sub_msg":"不合法的access_token","errmsg":"ilegal request","request_id":"req88"}`,
			wantCode: 88, wantSubCode: "40014", wantClass: ClassTokenInvalid},
		{name: "22 unknown method", body: `{"errcode":22,"errmsg":"Invalid method"}`, wantCode: 22, wantClass: ClassPermanent},
		{name: "-1 busy", body: `{"errcode":-1,"errmsg":"系统繁忙"}`, wantCode: -1, wantClass: ClassTransient},
		{name: "88 no permission", body: `{"errcode":88,"sub_code":"60011","errmsg":"no permission"}`,
			wantCode: 88, wantSubCode: "60011", wantClass: ClassPermanent},
	}
	for _, sc := range sessionCalls {
		for _, tt := range tests {
			t.Run(sc.name+"/"+tt.name, func(t *testing.T) {
				client, mux := setup(t)
				mux.HandleFunc(sc.path, func(w http.ResponseWriter, r *http.Request) {
					fmt.Fprint(w, tt.body)
				})
				err := sc.call(client, testToken, "", testSessionRequest())
				var de *Error
				if !errors.As(err, &de) {
					t.Fatalf("error: got %v (%T), want *Error", err, err)
				}
				if got, want := de.Code, tt.wantCode; got != want {
					t.Errorf("Code: got %d, want %d", got, want)
				}
				if got, want := de.SubCode, tt.wantSubCode; got != want {
					t.Errorf("SubCode: got %q, want %q", got, want)
				}
				if got, want := de.Path, sc.path; got != want {
					t.Errorf("Path: got %q, want %q", got, want)
				}
				if got, want := Classify(err), tt.wantClass; got != want {
					t.Errorf("Classify: got %v, want %v", got, want)
				}
				if strings.Contains(err.Error(), testToken) {
					t.Errorf("error %q leaks the token", err)
				}
			})
		}
	}
}
