package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/producer"
	"github.com/spf13/cobra"
)

func newMessageCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "message",
		Short: "Cancel, pause, resume or recall a message, or list a broadcast's recipients",
		Example: `  dingq message cancel 0190c5a2-…
  dingq message pause 0190c5a2-…
  dingq message recipients 0190c5a2-… --status forbidden --all`,
		Args: cobra.NoArgs,
	}
	type action struct {
		use, short string
		do         func(*producer.Producer, context.Context, string) (*producer.Outcome, error)
	}
	for _, a := range []action{
		{"cancel", "Cancel a message: a queued one, or the batches of a broadcast not sent yet", (*producer.Producer).Cancel},
		{"pause", "Pause a broadcast: its batches wait until resume", (*producer.Producer).Pause},
		{"resume", "Set a paused broadcast going again", (*producer.Producer).Resume},
		{"recall", "Recall a message, or every batch of a broadcast, at DingTalk (within 24 hours)", (*producer.Producer).Recall},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:   a.use + " ID",
			Short: a.short,
			Long:  a.short + ". Prints the message's outcome as JSON.",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				e, p, err := setupProducer(cmd.Context(), g.configPath)
				if err != nil {
					return err
				}
				defer e.close()
				o, err := a.do(p, cmd.Context(), args[0])
				if err != nil {
					return messageError(a.use, args[0], err)
				}
				printOutcome(cmd.OutOrStdout(), o)
				return nil
			},
		})
	}
	cmd.AddCommand(newRecipientsCmd(g))
	return cmd
}

// messageError explains why action on message id was refused.
func messageError(action, id string, err error) error {
	var te *producer.TerminalError
	switch {
	case errors.Is(err, producer.ErrNotFound):
		return fmt.Errorf("no message %q (unknown, or older than outcome.retention)", id)
	case errors.Is(err, producer.ErrNotBroadcast):
		return fmt.Errorf("cannot %s message %s: it is not a broadcast; only broadcasts can be paused and resumed", action, id)
	case errors.Is(err, producer.ErrInFlight):
		return fmt.Errorf("cannot %s message %s: a worker is sending it right now, and DingTalk may have it already", action, id)
	case errors.As(err, &te):
		return fmt.Errorf("cannot %s message %s: it is %s already", action, id, te.Status)
	case errors.Is(err, producer.ErrNothingToRecall):
		return fmt.Errorf("nothing to recall: DingTalk accepted nothing of message %s", id)
	case errors.Is(err, producer.ErrRobotRecall):
		return fmt.Errorf("cannot recall message %s: a robot sent it, and dingq recalls work notifications only", id)
	}
	return err
}

type recipientsFlags struct {
	status        string
	offset, limit int64
	all           bool
}

func newRecipientsCmd(g *globals) *cobra.Command {
	f := &recipientsFlags{}
	cmd := &cobra.Command{
		Use:   "recipients ID",
		Short: "List a broadcast's recipients with one result, one user id a line",
		Long: `Lists the recipients of a broadcast that ended with one result (--status), one
id a line; forbidden ones are followed by a tab and the code of the DingTalk
limit that dropped them. Without --all it prints one page and, if there is
more, the --offset of the next one on stderr.

Results: ` + strings.Join(producer.RecipientResults, ", ") + `.`,
		Example: `  dingq message recipients 0190c5a2-… --status forbidden --all
  dingq message recipients 0190c5a2-… --status unread --limit 500 --offset 1000`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(producer.RecipientResults, f.status) {
				return fmt.Errorf("--status: want one of %s", strings.Join(producer.RecipientResults, ", "))
			}
			if f.limit < 1 || f.limit > producer.MaxRecipientsPage {
				return fmt.Errorf("--limit: want 1 to %d", producer.MaxRecipientsPage)
			}
			if f.offset < 0 {
				return errors.New("--offset: want 0 or more")
			}
			e, p, err := setupProducer(cmd.Context(), g.configPath)
			if err != nil {
				return err
			}
			defer e.close()
			id, out := args[0], cmd.OutOrStdout()
			offset, limit := f.offset, f.limit
			if f.all && !cmd.Flags().Changed("limit") {
				limit = producer.MaxRecipientsPage
			}
			for {
				page, err := p.Recipients(cmd.Context(), id, f.status, offset, limit)
				var ve *dingtalk.ValidationError
				if errors.As(err, &ve) {
					return fmt.Errorf("--%s: %s", ve.Field, ve.Reason)
				}
				if err != nil {
					return messageError("list the recipients of", id, err)
				}
				for _, r := range page.Items {
					if r.Code != "" {
						fmt.Fprintf(out, "%s\t%s\n", r.UserID, r.Code)
					} else {
						fmt.Fprintln(out, r.UserID)
					}
				}
				if page.Next == 0 {
					return nil
				}
				if !f.all {
					fmt.Fprintf(cmd.ErrOrStderr(), "%d of %d %s recipients from offset %d; the next page: --offset %d\n",
						len(page.Items), page.Total, f.status, offset, page.Next)
					return nil
				}
				offset = page.Next
			}
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.status, "status", "", "the result: "+strings.Join(producer.RecipientResults, ", ")+" (required)")
	fl.Int64Var(&f.offset, "offset", 0, "skip this many first")
	fl.Int64Var(&f.limit, "limit", 1000, fmt.Sprintf("at most this many (up to %d); with --all, a page's size", producer.MaxRecipientsPage))
	fl.BoolVar(&f.all, "all", false, "page through every one")
	_ = cmd.MarkFlagRequired("status")
	return cmd
}
