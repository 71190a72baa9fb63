package main

import (
	"errors"
	"fmt"

	"github.com/dingq/dingq/producer"
	"github.com/spf13/cobra"
)

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status ID",
		Short: "Print what became of a message, as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, p, err := setupProducer(cmd.Context(), g.configPath)
			if err != nil {
				return err
			}
			defer e.close()
			o, err := p.Status(cmd.Context(), args[0])
			if errors.Is(err, producer.ErrNotFound) {
				return fmt.Errorf("no message %q (unknown, or older than outcome.retention)", args[0])
			}
			if err != nil {
				return err
			}
			printOutcome(cmd.OutOrStdout(), o)
			return nil
		},
	}
}
