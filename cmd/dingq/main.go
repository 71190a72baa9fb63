// Command dingq delivers DingTalk messages for backend applications through
// asynq queues in Redis. One binary, with subcommands: worker, api, demo,
// send, status and fake-dingtalk. Run `dingq help` for the list.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "dingq:", err)
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(int(ee))
		}
		os.Exit(1)
	}
}

// exitError carries an exit status other than 1.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// globals are the flags every subcommand shares.
type globals struct {
	configPath string
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "dingq",
		Short: "Deliver DingTalk messages for backend applications, reliably and at DingTalk's pace",
		Long: `dingq takes DingTalk messages from backend applications (Go producer, HTTP API or
this CLI), queues them in Redis with asynq, and has workers send them within
DingTalk's limits, retrying what can succeed later and recording every outcome.

Start with 'dingq demo': the whole system in one process, no servers needed.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := os.Getenv("DINGQ_CONFIG")
	if def == "" {
		def = "config.yaml"
	}
	root.PersistentFlags().StringVar(&g.configPath, "config", def, "config file (env DINGQ_CONFIG)")
	root.AddCommand(newCallbackCmd(g), newSessionCmd(g), newWorkerCmd(g), newAPICmd(g), newDemoCmd(), newSendCmd(g), newBroadcastCmd(g), newRobotCmd(g), newStatusCmd(g), newMessageCmd(g), newFakeCmd(), newBenchCmd())
	return root
}
