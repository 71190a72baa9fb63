package main

import (
	"context"
	"errors"
	"fmt"

	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/producer"
	"github.com/spf13/cobra"
)

// queueAndWait queues a task with enqueue, prints its id and, unless
// noWait, waits for its outcome and prints it (exit 2 unless sent).
func queueAndWait(cmd *cobra.Command, g *globals, noWait bool, timeout time.Duration,
	enqueue func(ctx context.Context, p *producer.Producer) (string, error)) error {
	e, p, err := setupProducer(cmd.Context(), g.configPath)
	if err != nil {
		return err
	}
	defer e.close()
	id, err := enqueue(cmd.Context(), p)
	var ve *dingtalk.ValidationError
	if errors.As(err, &ve) {
		return fmt.Errorf("invalid: %s: %s", flagName(ve.Field), ve.Reason)
	}
	if err != nil {
		return err
	}
	if noWait {
		fmt.Fprintln(cmd.OutOrStdout(), id)
		return nil
	}
	stderrf("queued %s; waiting for a worker\n", id)
	return waitAndPrint(cmd.Context(), cmd.OutOrStdout(), p, id, timeout, func(*producer.Outcome) {})
}

func newCallbackCmd(g *globals) *cobra.Command {
	var app string
	var noWait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "callback register|update|get|delete --app A",
		Short: "Register, update, show or delete an app's callback at DingTalk (a task a worker runs)",
		Long: `Queues a callback registration task for the app; a worker runs it with the
callback section of its configuration (token, aes_key, url, tags: the secrets never
travel in the task) and records what DingTalk answered. It then waits for that
outcome and prints it. DingTalk checks the URL at once (check_url): the api must be
reachable there with the same callback.token and callback.aes_key.`,
		Example: `  dingq callback register --app hr
  dingq callback get --app hr`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: producer.CallbackActions,
		RunE: func(cmd *cobra.Command, args []string) error {
			return queueAndWait(cmd, g, noWait, timeout, func(ctx context.Context, p *producer.Producer) (string, error) {
				return p.EnqueueCallbackAdmin(ctx, app, args[0])
			})
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "app name from dingtalk.apps (required)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "print the task's id and return at once")
	cmd.Flags().DurationVar(&timeout, "wait-timeout", time.Minute, "how long to wait for a worker")
	return cmd
}

func newSessionCmd(g *globals) *cobra.Command {
	var s producer.Session
	var noWait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "session get|create|close --app A [--user U] [--session-id S] [--chat-id C]",
		Short: "Get, create or close a session (seed 001's endpoints; a task a worker runs)",
		Example: `  dingq session get --app hr --user manager1
  dingq session create --app hr --user manager1 --chat-id chat42
  dingq session close --app hr --session-id s-123`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s.Action = args[0]
			return queueAndWait(cmd, g, noWait, timeout, func(ctx context.Context, p *producer.Producer) (string, error) {
				return p.EnqueueSession(ctx, &s)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&s.App, "app", "", "app name from dingtalk.apps (required)")
	fl.StringVar(&s.UserID, "user", "", "user id (get, create)")
	fl.StringVar(&s.SessionID, "session-id", "", "session id (close; create makes one if empty)")
	fl.StringVar(&s.ChatID, "chat-id", "", "chat id (create)")
	fl.BoolVar(&noWait, "no-wait", false, "print the task's id and return at once")
	fl.DurationVar(&timeout, "wait-timeout", time.Minute, "how long to wait for a worker")
	return cmd
}
