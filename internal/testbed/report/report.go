// Package report writes the benchmarks' markdown: a Markdown buffer, the
// figures formatted the same way in every table (seconds, medians, lists),
// the machine's description, and Write, which puts a benchmark's section
// where `make bench` wants it.
//
// It is a test bed for bench/, never imported by shipped code.
package report

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Markdown accumulates a report's text.
type Markdown struct{ strings.Builder }

// F appends formatted text.
func (m *Markdown) F(format string, a ...any) { fmt.Fprintf(m, format, a...) }

// EnvOut names the variable holding the file of `make bench`'s main report
// (docs/benchmarks.md); the other benchmarks write their sections beside it.
const EnvOut = "MINIBROKER_BENCH_OUT"

// Write writes a benchmark's markdown to the file out; when out is empty,
// to the file name beside $MINIBROKER_BENCH_OUT; when that is not set
// either, only to standard output. It fails t when the file cannot be
// written.
func Write(t testing.TB, text, out, name string) {
	t.Helper()
	if out == "" && os.Getenv(EnvOut) != "" {
		out = filepath.Join(filepath.Dir(os.Getenv(EnvOut)), name)
	}
	if out == "" {
		fmt.Print("\n" + text)
		return
	}
	t.Log("\n" + text)
	if err := Save(out, text); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", out)
}

// Save writes text to the file path, making its directory.
func Save(path, text string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// Stamp is the time reports are generated at, as they print it.
func Stamp() string { return time.Now().UTC().Format("2006-01-02 15:04 MST") }

// Secs formats a duration as seconds with one decimal: "12.3 s".
func Secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// JoinSecs lists durations as seconds with two decimals: "3.91, 4.02 s".
func JoinSecs(ds []time.Duration) string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%.2f", d.Seconds()))
	}
	return strings.Join(out, ", ") + " s"
}

// Median is the median of ds (the mean of the middle two for an even
// count), 0 for none.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Met says whether a target was met, the failure in bold.
func Met(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// Leftovers lists what a check found left behind, in bold, or "nothing".
func Leftovers(p []string) string {
	if len(p) == 0 {
		return "nothing"
	}
	return "**" + strings.Join(p, "; ") + "**"
}

// FirstFew lists the first n of s and how many more there are.
func FirstFew(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:n], ", ") + fmt.Sprintf(", … (%d more)", len(s)-n)
}
