package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/producer"
	"github.com/spf13/cobra"
)

type sendFlags struct {
	app, text, mdTitle, markdown, msgJSON, msgFile string
	users, depts                                   []string
	toAll, coalesce                                bool
	idemKey, sendAt, priority                      string
	wait                                           bool
	waitTimeout                                    time.Duration
}

func newSendCmd(g *globals) *cobra.Command {
	f := &sendFlags{}
	cmd := &cobra.Command{
		Use:   "send",
		Short: "Queue one work notification and print its id",
		Example: `  dingq send --app hr --user u1,u2 --text "Payroll is out"
  dingq send --app hr --dept 42 --markdown-title Release --markdown "# v2 is live" --wait
  dingq send --app hr --user u1 --msg '{"msgtype":"link","link":{...}}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := f.message(cmd.InOrStdin())
			if err != nil {
				return err
			}
			e, p, err := setupProducer(cmd.Context(), g.configPath)
			if err != nil {
				return err
			}
			defer e.close()
			id, err := p.Send(cmd.Context(), m)
			var ve *dingtalk.ValidationError
			if errors.As(err, &ve) {
				return fmt.Errorf("invalid message: %s: %s", flagName(ve.Field), ve.Reason)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			if !f.wait {
				return nil
			}
			return waitAndPrint(cmd.Context(), cmd.OutOrStdout(), p, id, f.waitTimeout, attemptsTo(os.Stderr))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.app, "app", "", "app name from dingtalk.apps (required)")
	fl.StringSliceVar(&f.users, "user", nil, "user id; repeat or separate with commas (over 100 make a broadcast: see dingq broadcast)")
	fl.StringSliceVar(&f.depts, "dept", nil, "department id; repeat or separate with commas (over 20 make a broadcast)")
	fl.BoolVar(&f.toAll, "to-all", false, "send to every user of the company (DingTalk allows 3 a day)")
	fl.StringVar(&f.text, "text", "", "a text message")
	fl.StringVar(&f.mdTitle, "markdown-title", "", "title of a markdown message")
	fl.StringVar(&f.markdown, "markdown", "", "text of a markdown message")
	fl.StringVar(&f.msgJSON, "msg", "", `any message as DingTalk's JSON, e.g. '{"msgtype":"text","text":{"content":"hi"}}'`)
	fl.StringVar(&f.msgFile, "msg-file", "", "read the message JSON from a file (- for stdin)")
	fl.StringVar(&f.idemKey, "idempotency-key", "", "the same key again returns the first message's id and sends nothing")
	fl.StringVar(&f.priority, "priority", "default", "queue lane: critical, default or bulk")
	fl.BoolVar(&f.coalesce, "coalesce", false, "may share a call with other messages of the same content (at most 100 users, no departments)")
	fl.StringVar(&f.sendAt, "send-at", "", "send later, at this RFC 3339 time")
	fl.BoolVar(&f.wait, "wait", false, "wait until the message is sent or failed, showing its progress")
	fl.DurationVar(&f.waitTimeout, "wait-timeout", 2*time.Minute, "give up waiting after this long")
	_ = cmd.MarkFlagRequired("app")
	return cmd
}

// message builds the producer message from the flags; exactly one message
// source must be given.
func (f *sendFlags) message(stdin io.Reader) (*producer.Message, error) {
	m := &producer.Message{App: f.app, UserIDs: f.users, DeptIDs: f.depts, ToAllUser: f.toAll, IdempotencyKey: f.idemKey,
		Priority: producer.Priority(f.priority), Coalesce: f.coalesce}
	sources := 0
	for _, set := range []bool{f.text != "", f.markdown != "" || f.mdTitle != "", f.msgJSON != "", f.msgFile != ""} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return nil, errors.New("give exactly one of --text, --markdown (with --markdown-title), --msg or --msg-file")
	}
	switch {
	case f.text != "":
		m.Msg = dingtalk.TextMessage(f.text)
	case f.markdown != "" || f.mdTitle != "":
		m.Msg = dingtalk.MarkdownMessage(f.mdTitle, f.markdown)
	default:
		raw, err := readMsgJSON(f.msgJSON, f.msgFile, stdin)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(raw, &m.Msg); err != nil {
			return nil, fmt.Errorf("--msg: not a DingTalk message in JSON: %w", err)
		}
	}
	var err error
	if m.SendAt, err = parseSendAt(f.sendAt); err != nil {
		return nil, err
	}
	return m, nil
}

// readMsgJSON returns a message's JSON: msgJSON (--msg), or the contents
// of msgFile (--msg-file, "-" for stdin) if it is given.
func readMsgJSON(msgJSON, msgFile string, stdin io.Reader) ([]byte, error) {
	if msgFile == "" {
		return []byte(msgJSON), nil
	}
	var (
		raw []byte
		err error
	)
	if msgFile == "-" {
		raw, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		raw, err = os.ReadFile(msgFile)
	}
	if err != nil {
		return nil, fmt.Errorf("--msg-file: %w", err)
	}
	return raw, nil
}

// parseSendAt parses --send-at; "" is no time (send now).
func parseSendAt(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--send-at: want an RFC 3339 time such as 2026-11-23T09:00:00+08:00: %w", err)
	}
	return t, nil
}

// flagName maps a message field to the flag that sets it, for errors.
func flagName(field string) string {
	switch field {
	case "app":
		return "--app"
	case "userid_list":
		return "--user"
	case "dept_id_list":
		return "--dept"
	case "idempotency_key":
		return "--idempotency-key"
	case "priority":
		return "--priority"
	case "userid":
		return "--user"
	case "session_id":
		return "--session-id"
	case "chatid":
		return "--chat-id"
	}
	return field
}

// waitFor polls message id until its status is terminal or timeout passes,
// calling progress whenever the status or attempt count changes.
func waitFor(ctx context.Context, p *producer.Producer, id string, timeout time.Duration, progress func(*producer.Outcome)) (*producer.Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last producer.Status
	lastAttempts := -1
	for {
		o, err := p.Status(ctx, id)
		switch {
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
			// The deadline passed during the read: the same as after it.
			return nil, fmt.Errorf("message %s: still %s after %s", id, last, timeout)
		case err != nil && !errors.Is(err, producer.ErrNotFound):
			return nil, err
		}
		if o != nil {
			if o.Status != last || o.Attempts != lastAttempts {
				last, lastAttempts = o.Status, o.Attempts
				progress(o)
			}
			if o.Status.Terminal() {
				return o, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("message %s: still %s after %s", id, last, timeout)
		case <-tick.C:
		}
	}
}

// attemptsTo reports each change of a message's status and attempts on w.
func attemptsTo(w io.Writer) func(*producer.Outcome) {
	return func(o *producer.Outcome) {
		fmt.Fprintf(w, "%s  %s (attempts %d)\n", time.Now().Format("15:04:05"), o.Status, o.Attempts)
	}
}

// waitAndPrint waits for record id to be final (see waitFor), prints its
// outcome on w, and returns exit status 2 unless it was sent.
func waitAndPrint(ctx context.Context, w io.Writer, p *producer.Producer, id string, timeout time.Duration, progress func(*producer.Outcome)) error {
	o, err := waitFor(ctx, p, id, timeout, progress)
	if err != nil {
		return err
	}
	printOutcome(w, o)
	if o.Status != producer.StatusSent {
		return exitError(2)
	}
	return nil
}

func printOutcome(w io.Writer, o *producer.Outcome) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(o)
}
