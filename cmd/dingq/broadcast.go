package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/producer"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// broadcastFlags are dingq broadcast's settings. The message flags are
// send's, so the message is built the same way.
type broadcastFlags struct {
	msg       sendFlags
	usersFile string
	column    string
}

// broadcastPoll is how often --wait reads a broadcast's outcome.
const broadcastPoll = 500 * time.Millisecond

func newBroadcastCmd(g *globals) *cobra.Command {
	f := &broadcastFlags{}
	cmd := &cobra.Command{
		Use:   "broadcast",
		Short: "Queue one work notification to a file of users, in batches of 100",
		Long: `Reads user ids from a file and queues one message to all of them: a broadcast,
sent in batches of 100 users on the bulk lane unless --priority says otherwise.
Prints the broadcast's id on stdout, progress and a summary on stderr.

The file (- for stdin) holds one user id a line; blank lines, surrounding
spaces and a UTF-8 byte order mark are ignored. It is read as CSV when its
name ends in .csv or --column is given: --column NAME takes the column of
that name from the header row, --column N the N-th column (from 1) of every
row, and a .csv file without --column must have one column, every row being
data. Nothing is queued if any line is wrong.

With --wait it follows the broadcast until every batch is finished and
DingTalk's results are in, then prints a summary table on stdout; it exits
with status 2 if the broadcast was canceled or a batch failed. Ctrl-C stops
the waiting only: the broadcast goes on.`,
		Example: `  dingq broadcast --app hr --users-file staff.txt --text "Payroll is out"
  dingq broadcast --app hr --users-file staff.csv --column userid --markdown-title Release --markdown "# v2" --wait
  cut -d, -f3 export.csv | dingq broadcast --app hr --users-file - --msg-file notice.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBroadcast(cmd, g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.msg.app, "app", "", "app name from dingtalk.apps (required)")
	fl.StringVar(&f.usersFile, "users-file", "", "file of user ids, one a line or CSV (- for stdin; required)")
	fl.StringVar(&f.column, "column", "", "CSV column of the user ids: a header name, or a number from 1")
	fl.StringVar(&f.msg.text, "text", "", "a text message")
	fl.StringVar(&f.msg.mdTitle, "markdown-title", "", "title of a markdown message")
	fl.StringVar(&f.msg.markdown, "markdown", "", "text of a markdown message")
	fl.StringVar(&f.msg.msgJSON, "msg", "", `any message as DingTalk's JSON, e.g. '{"msgtype":"text","text":{"content":"hi"}}'`)
	fl.StringVar(&f.msg.msgFile, "msg-file", "", "read the message JSON from a file (- for stdin)")
	fl.StringVar(&f.msg.idemKey, "idempotency-key", "", "the same key again returns the first broadcast's id and queues nothing")
	fl.StringVar(&f.msg.priority, "priority", string(producer.PriorityBulk), "queue lane: bulk, default or critical")
	fl.StringVar(&f.msg.sendAt, "send-at", "", "send later, at this RFC 3339 time")
	fl.BoolVar(&f.msg.wait, "wait", false, "follow the delivery until it is finished and print a summary")
	fl.DurationVar(&f.msg.waitTimeout, "wait-timeout", 0, "give up waiting after this long (0: no limit)")
	_ = cmd.MarkFlagRequired("app")
	_ = cmd.MarkFlagRequired("users-file")
	return cmd
}

func runBroadcast(cmd *cobra.Command, g *globals, f *broadcastFlags) error {
	ctx := cmd.Context()
	errw := cmd.ErrOrStderr()
	if f.usersFile == "-" && f.msg.msgFile == "-" {
		return errors.New("--users-file and --msg-file cannot both read stdin")
	}
	m, err := f.msg.message(cmd.InOrStdin())
	if err != nil {
		return err
	}
	users, err := readUsersFile(f.usersFile, f.column, cmd.InOrStdin(), errw)
	if err != nil {
		return err
	}
	m.UserIDs = users

	e, p, err := setupProducer(ctx, g.configPath)
	if err != nil {
		return err
	}
	defer e.close()

	progress, endProgress := batchBar(errw, 1)
	acc, err := p.Enqueue(ctx, m, progress)
	endProgress(err == nil)
	var ve *dingtalk.ValidationError
	if errors.As(err, &ve) {
		return fmt.Errorf("invalid broadcast: %s: %s", broadcastFlagName(ve.Field), ve.Reason)
	}
	if errors.Is(err, producer.ErrIdempotencyConflict) {
		return fmt.Errorf("--idempotency-key %q was used for a different message", m.IdempotencyKey)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(cmd.OutOrStdout(), acc.ID)
	fmt.Fprintln(errw, acceptedSummary(acc))
	if !f.msg.wait {
		return nil
	}
	if acc.Batches == 0 {
		// Few enough users for one call: follow it as dingq send does.
		return waitAndPrint(ctx, cmd.OutOrStdout(), p, acc.ID, waitLimit(f.msg.waitTimeout), attemptsTo(errw))
	}
	return followAndSummarize(ctx, cmd.OutOrStdout(), errw, p, acc.ID, f.msg.waitTimeout)
}

// batchBar shows on w the queueing of a broadcast's batches, when it has
// at least minBatches: pass the option to Enqueue or SendRobot, then call
// end with whether they succeeded.
func batchBar(w io.Writer, minBatches int) (opt producer.EnqueueOption, end func(ok bool)) {
	var (
		once sync.Once
		bar  *progressbar.ProgressBar
	)
	opt = producer.WithProgress(func(_, total int) {
		if total < minBatches {
			return
		}
		once.Do(func() { bar = newBar(w, int64(total), "queueing batches", false) })
		_ = bar.Add(1)
	})
	return opt, func(ok bool) {
		if bar != nil {
			endBar(w, bar, ok)
		}
	}
}

// followAndSummarize follows broadcast id to its end, printing its
// progress on errw and its summary on out; exit status 2 if it was
// canceled or a batch failed.
func followAndSummarize(ctx context.Context, out, errw io.Writer, p *producer.Producer, id string, timeout time.Duration) error {
	o, err := followBroadcast(ctx, p, id, timeout, errw)
	if err != nil {
		return err
	}
	printBroadcastSummary(out, o)
	if o.Status == producer.StatusCanceled || o.Broadcast.Batches.Failed > 0 {
		return exitError(2)
	}
	return nil
}

// waitLimit turns --wait-timeout's 0 (no limit) into a duration waitFor
// takes.
func waitLimit(d time.Duration) time.Duration {
	if d <= 0 {
		return 100 * 365 * 24 * time.Hour
	}
	return d
}

// acceptedSummary is the line printed once a broadcast is queued.
func acceptedSummary(acc *producer.Accepted) string {
	calls := fmt.Sprintf("%d batches", acc.Batches)
	switch acc.Batches {
	case 0:
		calls = "1 call (not a broadcast: at most 100 users)"
	case 1:
		calls = "1 batch"
	}
	return fmt.Sprintf("queued %s: %d recipients, %d duplicates removed, %s", acc.ID, acc.Recipients, acc.Duplicates, calls)
}

// broadcastFlagName maps a message field to the flag of dingq broadcast
// that sets it.
func broadcastFlagName(field string) string {
	if field == "userid_list" || strings.HasPrefix(field, "userid_list[") {
		return "--users-file"
	}
	return flagName(field)
}

// newBar returns a progress bar on w; countBytes makes it count bytes, and
// a max below zero makes it count without a total.
func newBar(w io.Writer, max int64, desc string, countBytes bool) *progressbar.ProgressBar {
	return progressbar.NewOptions64(max, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(), progressbar.OptionShowBytes(countBytes), progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetPredictTime(true),
		// No spinner goroutine: it would write behind our back.
		progressbar.OptionSetSpinnerChangeInterval(0))
}

// endBar completes bar (fills it if ok, leaves it as it is if not) and
// ends its line.
func endBar(w io.Writer, bar *progressbar.ProgressBar, ok bool) {
	if ok {
		_ = bar.Finish()
	} else {
		_ = bar.Exit()
	}
	fmt.Fprintln(w)
}

// readUsersFile reads the user ids of path ("-": stdin) with a progress
// bar of the bytes read on errw.
func readUsersFile(path, column string, stdin io.Reader, errw io.Writer) ([]string, error) {
	name, size := "stdin", int64(-1)
	var r io.Reader = stdin
	if path != "-" {
		fh, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--users-file: %w", err)
		}
		defer fh.Close()
		if st, err := fh.Stat(); err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
		name, r = path, fh
	}
	if size == 0 {
		return nil, fmt.Errorf("%s: no user ids: the file is empty", name)
	}
	bar := newBar(errw, size, "reading "+name, true)
	ids, err := readUsers(io.Reader(&barReader{r: r, bar: bar}), name, isCSV(path, column), column)
	endBar(errw, bar, err == nil)
	return ids, err
}

// barReader advances a progress bar by the bytes read.
type barReader struct {
	r   io.Reader
	bar *progressbar.ProgressBar
}

func (b *barReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	_ = b.bar.Add(n)
	return n, err
}

// isCSV says whether a users file is read as CSV.
func isCSV(path, column string) bool {
	return column != "" || strings.HasSuffix(strings.ToLower(path), ".csv")
}

var utf8BOM = []byte("\ufeff")

// readUsers reads user ids from r, named name in errors: one a line, or
// with asCSV the column given by column (a header name, a number from 1,
// or "" for the first). Blank lines, surrounding spaces and a leading
// UTF-8 BOM are ignored; an id DingTalk would refuse is an error naming
// its line, as is a file without ids.
func readUsers(r io.Reader, name string, asCSV bool, column string) ([]string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(len(utf8BOM)); err == nil && bytes.Equal(b, utf8BOM) {
		_, _ = br.Discard(len(utf8BOM))
	}
	var ids []string
	add := func(line int, id string) error {
		if err := dingtalk.ValidateIDs("", []string{id}); err != nil {
			reason := err.Error()
			var ve *dingtalk.ValidationError
			if errors.As(err, &ve) {
				reason = ve.Reason
			}
			return fmt.Errorf("%s line %d: %s", name, line, reason)
		}
		ids = append(ids, id)
		return nil
	}
	var err error
	if asCSV {
		err = readUsersCSV(br, name, column, add)
	} else {
		err = readUsersLines(br, name, add)
	}
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s: no user ids in it", name)
	}
	return ids, nil
}

func readUsersLines(br *bufio.Reader, name string, add func(int, string) error) error {
	for line := 1; ; line++ {
		s, err := br.ReadString('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s line %d: %w", name, line, err)
		}
		if id := strings.TrimSpace(s); id != "" {
			if aerr := add(line, id); aerr != nil {
				return aerr
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

func readUsersCSV(br *bufio.Reader, name, column string, add func(int, string) error) error {
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	idx, byName := 0, false
	colDesc := "1"
	if column != "" {
		n, err := strconv.Atoi(column)
		switch {
		case err != nil:
			byName, colDesc = true, strconv.Quote(column)
		case n < 1:
			return fmt.Errorf("--column %d: columns are numbered from 1", n)
		default:
			idx, colDesc = n-1, column
		}
	}
	header := byName
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			if header {
				return fmt.Errorf("%s: no header row with a column %s", name, colDesc)
			}
			return nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("%s line %d: %v", name, pe.Line, pe.Err)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		if !slices.ContainsFunc(rec, func(s string) bool { return strings.TrimSpace(s) != "" }) {
			continue // a blank row
		}
		if header {
			header = false
			idx = slices.IndexFunc(rec, func(s string) bool { return strings.EqualFold(strings.TrimSpace(s), column) })
			if idx < 0 {
				return fmt.Errorf("%s line %d: no column %s in the header row (%s)", name, line, colDesc,
					strings.Join(rec, ", "))
			}
			continue
		}
		if column == "" && len(rec) > 1 {
			// Which column, and whether the first row is a header, cannot be
			// told: a guess could send to "userid" or to the wrong ids.
			return fmt.Errorf("%s line %d: the CSV has %d columns: name the one of the user ids with --column NAME (it has a header row) or --column N",
				name, line, len(rec))
		}
		if idx >= len(rec) {
			return fmt.Errorf("%s line %d: no column %s: the row has %d", name, line, colDesc, len(rec))
		}
		if id := strings.TrimSpace(rec[idx]); id != "" {
			if err := add(line, id); err != nil {
				return err
			}
		}
	}
}

// followBroadcast polls broadcast id every broadcastPoll with a bar of its
// finished batches on errw, until it is finished. Interrupting (ctx done)
// or timeout (if > 0) stops the waiting, not the broadcast.
func followBroadcast(ctx context.Context, p *producer.Producer, id string, timeout time.Duration, errw io.Writer) (*producer.Outcome, error) {
	wctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	tick := time.NewTicker(broadcastPoll)
	defer tick.Stop()
	var (
		bar      *progressbar.ProgressBar
		lastDesc string
		last     *producer.Outcome
	)
	stopped := func() error {
		if bar != nil {
			endBar(errw, bar, false)
		}
		status := "its status unknown"
		if last != nil {
			status = "still " + string(last.Status)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: stopped waiting for broadcast %s (%s); it goes on: see dingq status %s", id, status, id)
		}
		return fmt.Errorf("stopped waiting for broadcast %s after %s (%s); it goes on: see dingq status %s", id, timeout, status, id)
	}
	for {
		o, err := p.Status(wctx, id)
		if wctx.Err() != nil {
			return nil, stopped()
		}
		if err != nil {
			if bar != nil {
				endBar(errw, bar, false)
			}
			return nil, err
		}
		if o.Broadcast == nil {
			return nil, fmt.Errorf("message %s is not a broadcast", id)
		}
		last = o
		b := o.Broadcast
		if bar == nil {
			bar = newBar(errw, int64(max(b.Batches.Total, 1)), "", false)
		}
		if total := max(b.Batches.Total, 1); total != bar.GetMax() {
			bar.ChangeMax(total)
		}
		desc := fmt.Sprintf("%s: sent %d, failed %d, paused %d; results pending %d", o.Status,
			b.Batches.Sent, b.Batches.Failed, b.Batches.Paused, b.Results.PendingBatches)
		if desc != lastDesc {
			bar.Describe(desc)
			lastDesc = desc
		}
		_ = bar.Set(b.Batches.Sent + b.Batches.Failed + b.Batches.Canceled)
		if b.Finished {
			endBar(errw, bar, true)
			return o, nil
		}
		select {
		case <-wctx.Done():
			return nil, stopped()
		case <-tick.C:
		}
	}
}

// printBroadcastSummary prints a finished broadcast's counts as a table.
func printBroadcastSummary(w io.Writer, o *producer.Outcome) {
	b := o.Broadcast
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name string, v any) { fmt.Fprintf(tw, "%s\t%v\n", name, v) }
	row("broadcast", o.ID)
	row("status", o.Status)
	row("batches", fmt.Sprintf("%d (sent %d, failed %d, canceled %d)", b.Batches.Total, b.Batches.Sent,
		b.Batches.Failed, b.Batches.Canceled))
	row("recipients", fmt.Sprintf("%d (%d duplicates removed)", b.Recipients.Total, b.Recipients.Duplicates))
	row("  accepted", b.Recipients.Accepted)
	row("  rejected", b.Recipients.Rejected)
	row("  canceled", b.Recipients.Canceled)
	row("  resent", b.Recipients.Resent)
	row("results", fmt.Sprintf("%d batches pending", b.Results.PendingBatches))
	row("  invalid", b.Results.Invalid)
	forbidden := strconv.Itoa(b.Results.ForbiddenTotal())
	if len(b.Results.Forbidden) > 0 {
		codes := make([]string, 0, len(b.Results.Forbidden))
		for code := range b.Results.Forbidden {
			codes = append(codes, code)
		}
		slices.Sort(codes)
		parts := make([]string, len(codes))
		for i, code := range codes {
			parts[i] = fmt.Sprintf("%s: %d", code, b.Results.Forbidden[code])
		}
		forbidden += " (" + strings.Join(parts, ", ") + ")"
	}
	row("  forbidden", forbidden)
	row("  failed", b.Results.Failed)
	row("  read", b.Results.Read)
	row("  unread", b.Results.Unread)
	if b.Results.Delivered > 0 {
		row("  delivered", b.Results.Delivered)
	}
	row("  unknown", b.Results.Unknown)
	if b.Recall != nil {
		row("recalled", fmt.Sprintf("%d batches (%d too old)", b.Recall.Recalled, b.Recall.Expired))
	}
	_ = tw.Flush()
}
