package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/config"
	"github.com/dingq/dingq/producer"
	"github.com/spf13/cobra"
)

func newRobotCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "robot",
		Short: "Send messages through a robot of dingtalk.robots",
		Long: `Messages through the robots of dingtalk.robots: a custom group robot (one with
webhooks) posts into its group chat, an enterprise robot (one with an app)
messages users one to one.`,
		Example: `  dingq robot send --robot alerts --text "disk full on db-1"
  dingq robot send --robot helpdesk --user u1,u2 --text "Your ticket is closed"`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newRobotSendCmd(g))
	return cmd
}

// robotSendFlags are dingq robot send's settings.
type robotSendFlags struct {
	robot                                     string
	text, mdTitle, markdown, msgJSON, msgFile string
	atMobiles, atUsers                        []string
	atAll                                     bool
	users                                     []string
	msgKey, msgParam                          string
	idemKey, priority, sendAt                 string
	wait                                      bool
	waitTimeout                               time.Duration
	groupMsg                                  *dingtalk.RobotMessage // --msg or --msg-file, decoded
	sendAtTime                                time.Time
}

// robotForm is which flags give a robot's message.
type robotForm int

const (
	formText     robotForm = iota + 1 // --text
	formMarkdown                      // --markdown-title, --markdown
	formJSON                          // --msg or --msg-file
	formTemplate                      // --msg-key, --msg-param
)

const robotForms = "--text, --markdown (with --markdown-title), --msg, --msg-file, or --msg-key with --msg-param"

func newRobotSendCmd(g *globals) *cobra.Command {
	f := &robotSendFlags{}
	cmd := &cobra.Command{
		Use:   "send",
		Short: "Queue one robot message and print its id",
		Long: `Queues one message through a robot of dingtalk.robots (--robot) and prints its
id on stdout. What the message may be depends on the robot:

A custom group robot (one with webhooks) posts into its group chat. Give
--text, --markdown-title with --markdown, or any custom robot message in
DingTalk's JSON with --msg or --msg-file (text, link, markdown, actionCard or
feedCard; unknown fields are refused). --at-mobile, --at-user and --at-all
mention members of the group in a text or markdown message; a markdown
message must also name them in its text, as @13800000000 or @userid.

An enterprise robot (one with an app) messages users one to one (--user,
required). Give --text (msgKey sampleText), --markdown-title with --markdown
(sampleMarkdown), or any message key with its parameters as a JSON object:
--msg-key and --msg-param. It is a broadcast sent 20 users a call: the
batches are queued with a progress bar on stderr when there are several,
and a summary of what was queued follows.

` + wrapWords("Message keys: "+strings.Join(dingtalk.RobotMsgKeys(), ", ")+".", 78) + `

With --wait it follows the message until it is final and prints its status
on stdout (for a one-to-one message, a summary table): it exits with status
2 if a group message was not sent, or a one-to-one message was canceled or
had a batch fail. Ctrl-C stops the waiting only: the message goes on.`,
		Example: `  # A custom group robot
  dingq robot send --robot alerts --text "disk full on db-1" --at-mobile 13800000000
  dingq robot send --robot alerts --markdown-title Deploy --markdown "### v2 is live @u1" --at-user u1 --wait
  dingq robot send --robot alerts --msg '{"msgtype":"link","link":{"title":"Report","text":"May","messageUrl":"https://example.com/r"}}'
  dingq robot send --robot alerts --msg-file card.json

  # An enterprise robot, one to one
  dingq robot send --robot helpdesk --user u1,u2 --text "Your ticket is closed"
  dingq robot send --robot helpdesk --user u1 --user u2 --markdown-title Payroll --markdown "**May** is out" --wait
  dingq robot send --robot helpdesk --user u1 --msg-key sampleActionCard \
    --msg-param '{"title":"Leave","text":"Approve?","singleTitle":"Open","singleURL":"https://example.com/l/1"}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRobotSend(cmd, g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.robot, "robot", "", "robot name from dingtalk.robots (required)")
	fl.StringVar(&f.text, "text", "", "a text message")
	fl.StringVar(&f.mdTitle, "markdown-title", "", "title of a markdown message")
	fl.StringVar(&f.markdown, "markdown", "", "text of a markdown message")
	fl.StringVar(&f.msgJSON, "msg", "", `group robot: any custom robot message as DingTalk's JSON, e.g. '{"msgtype":"text","text":{"content":"hi"}}'`)
	fl.StringVar(&f.msgFile, "msg-file", "", "group robot: read the message JSON from a file (- for stdin)")
	fl.StringSliceVar(&f.atMobiles, "at-mobile", nil, "group robot: mention the member of this mobile number; repeat or separate with commas")
	fl.StringSliceVar(&f.atUsers, "at-user", nil, "group robot: mention the member of this user id; repeat or separate with commas")
	fl.BoolVar(&f.atAll, "at-all", false, "group robot: mention everyone in the group")
	fl.StringSliceVar(&f.users, "user", nil, "enterprise robot: user id to message; repeat or separate with commas (over 20 make several batches)")
	fl.StringVar(&f.msgKey, "msg-key", "", "enterprise robot: the message key, e.g. sampleLink (with --msg-param)")
	fl.StringVar(&f.msgParam, "msg-param", "", `enterprise robot: the message key's parameters as a JSON object, e.g. '{"content":"hi"}'`)
	fl.StringVar(&f.idemKey, "idempotency-key", "", "the same key again (for the same robot) returns the first message's id and sends nothing")
	fl.StringVar(&f.priority, "priority", "", "queue lane: critical, default or bulk (if not given: default for a group robot, bulk for one to one)")
	fl.StringVar(&f.sendAt, "send-at", "", "send later, at this RFC 3339 time")
	fl.BoolVar(&f.wait, "wait", false, "wait until the message is final, showing its progress, and print its status")
	fl.DurationVar(&f.waitTimeout, "wait-timeout", 2*time.Minute, "give up waiting after this long (0: no limit)")
	return cmd
}

func runRobotSend(cmd *cobra.Command, g *globals, f *robotSendFlags) error {
	ctx, out, errw := cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	form, err := f.parse(cmd.InOrStdin())
	if err != nil {
		return err
	}
	e, p, err := setupProducer(ctx, g.configPath)
	if err != nil {
		return err
	}
	defer e.close()
	rb, err := f.lookup(e.cfg)
	if err != nil {
		return err
	}
	m, err := f.message(form, rb)
	if err != nil {
		return err
	}

	progress, endProgress := batchBar(errw, 2)
	acc, err := p.SendRobot(ctx, m, progress)
	endProgress(err == nil)
	var ve *dingtalk.ValidationError
	if errors.As(err, &ve) {
		return fmt.Errorf("invalid message: %s: %s", f.flagFor(form, ve.Field), ve.Reason)
	}
	if errors.Is(err, producer.ErrIdempotencyConflict) {
		return fmt.Errorf("--idempotency-key %q was used for a different message of robot %q", m.IdempotencyKey, m.Robot)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(out, acc.ID)
	group := rb.App == ""
	if !group {
		fmt.Fprintln(errw, acceptedSummary(acc))
	}
	if !f.wait {
		return nil
	}
	if group {
		return waitAndPrint(ctx, out, p, acc.ID, waitLimit(f.waitTimeout), attemptsTo(errw))
	}
	return followAndSummarize(ctx, out, errw, p, acc.ID, f.waitTimeout)
}

// parse checks what the flags alone can tell, reads and decodes --msg or
// --msg-file, and returns the message's form.
func (f *robotSendFlags) parse(stdin io.Reader) (robotForm, error) {
	if f.robot == "" {
		return 0, errors.New("--robot is required: the name of a robot of dingtalk.robots")
	}
	var given []string
	var form robotForm
	for _, c := range []struct {
		set  bool
		flag string
		form robotForm
	}{
		{f.text != "", "--text", formText},
		{f.mdTitle != "" || f.markdown != "", "--markdown", formMarkdown},
		{f.msgJSON != "", "--msg", formJSON},
		{f.msgFile != "", "--msg-file", formJSON},
		{f.msgKey != "" || f.msgParam != "", "--msg-key", formTemplate},
	} {
		if c.set {
			given = append(given, c.flag)
			form = c.form
		}
	}
	switch len(given) {
	case 0:
		return 0, errors.New("no message: give exactly one of " + robotForms)
	case 1:
	default:
		return 0, fmt.Errorf("conflicting flags %s: give exactly one of %s", strings.Join(given, " and "), robotForms)
	}
	var err error
	if f.sendAtTime, err = parseSendAt(f.sendAt); err != nil {
		return 0, err
	}
	if f.msgParam != "" && !json.Valid([]byte(f.msgParam)) {
		return 0, errors.New(`--msg-param: not JSON: want an object such as '{"content":"hi"}'`)
	}
	if form == formJSON {
		raw, err := readMsgJSON(f.msgJSON, f.msgFile, stdin)
		if err != nil {
			return 0, err
		}
		if f.groupMsg, err = decodeRobotMessage(raw); err != nil {
			return 0, fmt.Errorf("%s: %w", f.jsonFlag(), err)
		}
	}
	return form, nil
}

// decodeRobotMessage decodes one custom robot message, refusing unknown
// fields and anything after it.
func decodeRobotMessage(raw []byte) (*dingtalk.RobotMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var m dingtalk.RobotMessage
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a custom robot message in DingTalk's JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not a custom robot message in DingTalk's JSON: more after the message's object")
	}
	return &m, nil
}

// lookup returns the robot --robot names.
func (f *robotSendFlags) lookup(cfg *config.Config) (config.Robot, error) {
	rb, ok := cfg.Robot(f.robot)
	if ok {
		return rb, nil
	}
	names := make([]string, 0, len(cfg.DingTalk.Robots))
	for _, r := range cfg.DingTalk.Robots {
		names = append(names, r.Name)
	}
	if len(names) == 0 {
		return rb, fmt.Errorf("--robot: unknown robot %q: dingtalk.robots configures none", f.robot)
	}
	slices.Sort(names)
	return rb, fmt.Errorf("--robot: unknown robot %q: dingtalk.robots has %s", f.robot, strings.Join(names, ", "))
}

// message builds the producer's message for robot rb, refusing the flags
// of the other kind of robot.
func (f *robotSendFlags) message(form robotForm, rb config.Robot) (*producer.RobotMessage, error) {
	m := &producer.RobotMessage{Robot: f.robot, IdempotencyKey: f.idemKey, SendAt: f.sendAtTime,
		Priority: producer.Priority(f.priority)}
	if rb.App == "" {
		return m, f.groupMessage(form, m)
	}
	return m, f.oneToOneMessage(form, rb, m)
}

func (f *robotSendFlags) groupMessage(form robotForm, m *producer.RobotMessage) error {
	switch {
	case len(f.users) > 0:
		return fmt.Errorf("--user: robot %q is a custom group robot: it posts into its group chat, to no users (--user is for an enterprise robot)", f.robot)
	case form == formTemplate:
		return fmt.Errorf("%s: robot %q is a custom group robot: give --text, --markdown, --msg or --msg-file (--msg-key and --msg-param are for an enterprise robot)",
			f.templateFlag(), f.robot)
	}
	switch form {
	case formText:
		m.Msg = dingtalk.RobotTextMessage(f.text)
	case formMarkdown:
		m.Msg = dingtalk.RobotMarkdownMessage(f.mdTitle, f.markdown)
	default:
		m.Msg = f.groupMsg
	}
	if at := f.atFlag(); at != "" {
		if m.Msg.At != nil {
			return fmt.Errorf(`%s: the message of %s mentions with its own "at": give mentions in one place`, at, f.jsonFlag())
		}
		m.Msg.At = &dingtalk.RobotAt{AtMobiles: f.atMobiles, AtUserIDs: f.atUsers, IsAtAll: f.atAll}
	}
	return nil
}

func (f *robotSendFlags) oneToOneMessage(form robotForm, rb config.Robot, m *producer.RobotMessage) error {
	switch {
	case form == formJSON:
		return fmt.Errorf("%s: robot %q is an enterprise robot (app %s): it messages users one to one; give --text, --markdown or --msg-key with --msg-param (--msg and --msg-file are a custom group robot's)",
			f.jsonFlag(), f.robot, rb.App)
	case f.atFlag() != "":
		return fmt.Errorf("%s: robot %q is an enterprise robot (app %s): it messages users one to one; mentions are for a custom group robot",
			f.atFlag(), f.robot, rb.App)
	}
	var t dingtalk.RobotTemplate
	switch form {
	case formText:
		t = dingtalk.RobotTextTemplate(f.text)
	case formMarkdown:
		param, err := json.Marshal(map[string]string{"title": f.mdTitle, "text": f.markdown})
		if err != nil {
			return err
		}
		t = dingtalk.RobotTemplate{MsgKey: "sampleMarkdown", MsgParam: param}
	default:
		t = dingtalk.RobotTemplate{MsgKey: f.msgKey, MsgParam: json.RawMessage(f.msgParam)}
	}
	m.UserIDs, m.MsgKey, m.MsgParam = f.users, t.MsgKey, t.MsgParam
	return nil
}

// atFlag names the first mention flag given, or "" if none is.
func (f *robotSendFlags) atFlag() string {
	switch {
	case len(f.atMobiles) > 0:
		return "--at-mobile"
	case len(f.atUsers) > 0:
		return "--at-user"
	case f.atAll:
		return "--at-all"
	}
	return ""
}

// jsonFlag names the flag that gave the message's JSON.
func (f *robotSendFlags) jsonFlag() string {
	if f.msgFile != "" {
		return "--msg-file"
	}
	return "--msg"
}

// templateFlag names the flag of an enterprise robot's message given.
func (f *robotSendFlags) templateFlag() string {
	if f.msgKey != "" {
		return "--msg-key"
	}
	return "--msg-param"
}

// flagFor maps a field of producer.RobotMessage ("robot", "userIds[3]",
// "msg.text.content", "msgParam.title"…) to the flag that set it, for a
// message of form.
func (f *robotSendFlags) flagFor(form robotForm, field string) string {
	// sub and param are the parts after "msg." and "msgParam.", if any.
	var sub, param string
	isMsg, isParam := field == "msg", field == "msgParam"
	if s, ok := strings.CutPrefix(field, "msg."); ok {
		sub, isMsg = s, true
	}
	if s, ok := strings.CutPrefix(field, "msgParam."); ok {
		param, isParam = s, true
	}
	switch {
	case field == "robot":
		return "--robot"
	case field == "userIds" || strings.HasPrefix(field, "userIds["):
		return "--user"
	case field == "msgKey":
		return "--msg-key"
	case (sub == "at" || strings.HasPrefix(sub, "at.")) && f.atFlag() != "":
		return f.atFlag()
	case (isMsg || isParam) && form == formText:
		return "--text"
	case (isMsg || isParam) && form == formMarkdown:
		if sub == "markdown.title" || param == "title" {
			return "--markdown-title"
		}
		return "--markdown"
	case isMsg && sub != "":
		return fmt.Sprintf("%s (%s)", f.jsonFlag(), sub)
	case isMsg:
		return f.jsonFlag()
	case isParam && param != "":
		return fmt.Sprintf("--msg-param (%s)", param)
	case isParam:
		return "--msg-param"
	}
	return flagName(field)
}

// wrapWords breaks s into lines of at most width columns, between words.
func wrapWords(s string, width int) string {
	var b strings.Builder
	col := 0
	for _, w := range strings.Fields(s) {
		switch {
		case col == 0:
		case col+1+len(w) > width:
			b.WriteByte('\n')
			col = 0
		default:
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	return b.String()
}
