// Command loadgen is TestFaultAPILoad's load generator: a process of its
// own, built without the race detector, that POSTs messages to a dingq api
// at a fixed rate, open loop, and prints what it measured as JSON.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

// Result is what loadgen prints.
type Result struct {
	Requests    int     `json:"requests"`
	Failed      int     `json:"failed"`
	FirstError  string  `json:"first_error,omitempty"`
	OfferedRate float64 `json:"offered_rate"`
	P50, P90    float64 // milliseconds
	P99, Max    float64
}

func main() {
	url := flag.String("url", "", "the api's base URL")
	token := flag.String("token", "", "bearer token")
	rate := flag.Int("rate", 2000, "requests a second")
	dur := flag.Duration("duration", 5*time.Second, "how long to send")
	flag.Parse()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}, Timeout: 10 * time.Second}
	n := int(dur.Seconds() * float64(*rate))
	lat := make([]time.Duration, n)
	var (
		mu         sync.Mutex
		failed     int
		firstError string
		wg         sync.WaitGroup
	)
	begin := time.Now()
	for i := range n {
		// Request i is due at begin + i/rate: one late goes at once, so
		// the rate holds on average whatever the sleeps' granularity.
		if wait := time.Until(begin.Add(time.Duration(i) * time.Second / time.Duration(*rate))); wait > 0 {
			time.Sleep(wait)
		}
		wg.Go(func() {
			body := fmt.Sprintf(`{"app":"hr","userid_list":["u%d"],"msg":{"msgtype":"text","text":{"content":"load %d"}}}`, i%1000, i)
			req, _ := http.NewRequest(http.MethodPost, *url+"/v1/messages", bytes.NewBufferString(body))
			req.Header.Set("Authorization", "Bearer "+*token)
			req.Header.Set("Content-Type", "application/json")
			t0 := time.Now()
			resp, err := client.Do(req)
			status := 0
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				status = resp.StatusCode
			}
			lat[i] = time.Since(t0)
			if err != nil || status != http.StatusAccepted {
				mu.Lock()
				if failed++; firstError == "" {
					firstError = fmt.Sprintf("request %d: status %d, error %v", i, status, err)
				}
				mu.Unlock()
			}
		})
	}
	offered := float64(n) / time.Since(begin).Seconds()
	wg.Wait()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	pct := func(p float64) float64 { return ms(lat[int(p*float64(n-1))]) }
	_ = json.NewEncoder(os.Stdout).Encode(Result{Requests: n, Failed: failed, FirstError: firstError, OfferedRate: offered,
		P50: pct(0.5), P90: pct(0.9), P99: pct(0.99), Max: ms(lat[n-1])})
}
