// Command benchreport turns the output of make bench (go test -bench lines,
// and the same lines from dingq bench --bench-out) into a markdown table
// on standard output and a plot of throughput and latency (SVG or PNG, by
// the file's extension).
//
//	go test -run '^$' -bench . ./worker | go run ./cmd/benchreport -plot bench.svg
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	plotPath := flag.String("plot", "", "write the plot here (.svg or .png); none if empty")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: benchreport [-plot FILE] [FILE...]   (standard input without FILE)")
		flag.PrintDefaults()
	}
	flag.Parse()
	var in []io.Reader
	for _, path := range flag.Args() {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(1)
		}
		defer f.Close()
		in = append(in, f)
	}
	if len(in) == 0 {
		in = append(in, os.Stdin)
	}
	r, err := parse(io.MultiReader(in...))
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
	if len(r.results) == 0 {
		fmt.Fprintln(os.Stderr, "benchreport: no benchmark results in the input")
		os.Exit(1)
	}
	writeMarkdown(os.Stdout, r)
	if *plotPath != "" {
		if err := writePlot(*plotPath, r); err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(1)
		}
		fmt.Printf("\nPlot: %s\n", *plotPath)
	}
}

// result is one benchmark's line: its name (without the -GOMAXPROCS
// suffix), its iterations and its metrics by unit, in their order.
type result struct {
	name    string
	n       int
	units   []string
	metrics map[string]float64
	// runs are the metrics of each run of a benchmark run several times
	// (go test -count); metrics holds their medians.
	runs []map[string]float64
}

// median is the median of unit over runs (the lower middle one of an even
// count: a figure that was measured).
func median(runs []map[string]float64, unit string) float64 {
	var vs []float64
	for _, m := range runs {
		if v, ok := m[unit]; ok {
			vs = append(vs, v)
		}
	}
	slices.Sort(vs)
	return vs[(len(vs)-1)/2]
}

// report is what the input said: the machine (goos, goarch, cpu lines) and
// the results, in their order; a name seen more than once has the medians
// of its runs.
type report struct {
	machine map[string]string
	results []*result
}

func (r *report) get(name, unit string) (float64, bool) {
	for _, res := range r.results {
		if res.name == name {
			v, ok := res.metrics[unit]
			return v, ok
		}
	}
	return 0, false
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// parse reads go test -bench output; lines that are not results (PASS,
// ok, logs, progress bars) are skipped. Without -v, go test prints a
// benchmark's name before running it and its figures after, so a log line
// the benchmark printed meanwhile leaves the figures on a line of their
// own: they are joined to the name before them.
func parse(rd io.Reader) (*report, error) {
	r := &report{machine: map[string]string{}}
	add := func(res *result) {
		for _, o := range r.results {
			if o.name == res.name { // go test -count N: the median of the runs
				o.runs = append(o.runs, res.metrics)
				for u := range o.metrics {
					o.metrics[u] = median(o.runs, u)
				}
				return
			}
		}
		res.runs = []map[string]float64{maps.Clone(res.metrics)}
		r.results = append(r.results, res)
	}
	pending := "" // a name whose figures have not come yet
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		for _, k := range []string{"goos", "goarch", "cpu"} {
			if v, ok := strings.CutPrefix(line, k+": "); ok {
				r.machine[k] = v
			}
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case strings.HasPrefix(f[0], "Benchmark"):
			res, err := figures(f[0], f[1:])
			if err != nil {
				return nil, err
			}
			if res == nil {
				pending = f[0] // a name alone, or followed by a log line
				continue
			}
			add(res)
			pending = ""
		case pending != "":
			res, err := figures(pending, f)
			if err != nil {
				return nil, err
			}
			if res != nil {
				add(res)
				pending = ""
			}
		}
	}
	return r, sc.Err()
}

// figures reads the iterations and value-unit pairs f of benchmark name:
// nil if f is not that.
func figures(name string, f []string) (*result, error) {
	if len(f) < 3 || len(f)%2 != 1 {
		return nil, nil
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return nil, nil
	}
	res := &result{name: procsSuffix.ReplaceAllString(name, ""), n: n, metrics: map[string]float64{}}
	for i := 1; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: metric %q: %w", res.name, f[i+1], err)
		}
		res.units = append(res.units, f[i+1])
		res.metrics[f[i+1]] = v
	}
	return res, nil
}

// comparison is dingq against a baseline on one measure, with the share
// it must reach.
type comparison struct {
	what             string
	dingq, baseline  string // benchmark names
	unit             string
	target           float64
	dingqLabel, base string
}

var comparisons = []comparison{
	{"Pipeline: queue → handler done", "BenchmarkPipeline/dingq", "BenchmarkPipeline/asynq", "tasks/s", 0.7,
		"dingq's send path", "no-op asynq handler"},
	{"Enqueue: one message", "BenchmarkEnqueue/producer", "BenchmarkEnqueue/asynq", "msgs/s", 0.9,
		"producer.Send", "asynq client"},
	{"Fan-out: 100,000 users", "BenchmarkFanOut/producer", "BenchmarkFanOut/asynq", "users/s", 0.9,
		"producer broadcast", "asynq client, 1,000 tasks"},
}

func writeMarkdown(w io.Writer, r *report) {
	fmt.Fprintf(w, "Machine: %s/%s, %s\n\n", r.machine["goos"], r.machine["goarch"], cmpOr(r.machine["cpu"], "cpu unknown"))
	fmt.Fprintln(w, "| measure | dingq | baseline | ratio | target |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---|")
	for _, c := range comparisons {
		d, okD := r.get(c.dingq, c.unit)
		b, okB := r.get(c.baseline, c.unit)
		if !okD || !okB || b == 0 {
			fmt.Fprintf(w, "| %s | – | – | – | ≥ %.1f× (not measured) |\n", c.what, c.target)
			continue
		}
		ratio := d / b
		verdict := "met"
		if ratio < c.target {
			verdict = "**missed**"
		}
		fmt.Fprintf(w, "| %s | %s %s (%s) | %s %s (%s) | %.2f× | ≥ %.1f×: %s |\n",
			c.what, num(d), c.unit, c.dingqLabel, num(b), c.unit, c.base, ratio, c.target, verdict)
	}
	if p50, ok := r.get("BenchmarkLatency", "p50-ms"); ok {
		p99, _ := r.get("BenchmarkLatency", "p99-ms")
		rate, _ := r.get("BenchmarkLatency", "msgs/s")
		most, _ := r.get("BenchmarkLatency", "max-msgs/s")
		fmt.Fprintf(w, "| Latency: Send → DingTalk at %s msgs/s (aiming at half of the most, %s) | p50 %.1f ms, p99 %.1f ms | | | |\n",
			num(rate), num(most), p50, p99)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| benchmark | results |")
	fmt.Fprintln(w, "|---|---|")
	for _, res := range r.results {
		var parts []string
		for _, u := range res.units {
			if u == "ns/op" && len(res.units) > 1 {
				continue // the benchmarks report their own rates
			}
			parts = append(parts, num(res.metrics[u])+" "+u)
		}
		fmt.Fprintf(w, "| %s | %s |\n", strings.TrimPrefix(res.name, "Benchmark"), strings.Join(parts, ", "))
	}
}

// num prints v with thousands separators, and decimals only when small.
func num(v float64) string {
	switch {
	case v >= 100 || v <= -100:
		s := strconv.FormatFloat(v, 'f', 0, 64)
		neg := strings.HasPrefix(s, "-")
		s = strings.TrimPrefix(s, "-")
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		if neg {
			return "-" + b.String()
		}
		return b.String()
	case v == float64(int64(v)):
		return strconv.FormatInt(int64(v), 10)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
