package sandbox

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// faultKinds are the names ParseRandomFaults knows, besides HTTP statuses.
var faultKinds = map[string]Fault{
	"hang":     {Hang: true},
	"reset":    {Reset: true},
	"html":     {HTML: true},
	"truncate": {Truncate: true},
	"oversize": {Oversize: 16 << 20},
	"drip":     {Drip: 100 * time.Millisecond},
	"slow":     {Latency: 5 * time.Second},
}

// ParseRandomFaults reads rules for SetRandomFaults from a flag value such
// as "503=0.2,hang=0.05": each kind is an HTTP status (429 with
// "Retry-After: 1", 500, 502, 503, 504) or one of hang, reset, html,
// truncate, oversize, drip, slow; each rate is between 0 and 1.
func ParseRandomFaults(spec string) ([]RandomFault, error) {
	var rules []RandomFault
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		kind, rate, ok := strings.Cut(part, "=")
		r, err := strconv.ParseFloat(rate, 64)
		if !ok || err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("fault %q: want kind=rate with a rate between 0 and 1", part)
		}
		f, ok := faultKinds[kind]
		if !ok {
			status, err := strconv.Atoi(kind)
			if err != nil || status < 400 || status > 599 {
				return nil, fmt.Errorf("fault %q: unknown kind %q", part, kind)
			}
			f = Fault{Status: status}
			if status == 429 {
				f.RetryAfter = "1"
			}
		}
		rules = append(rules, RandomFault{Fault: f, Rate: r})
	}
	return rules, nil
}
