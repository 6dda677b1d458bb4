package filter

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
)

// DryRun evaluates prog on records and writes the id (the value at the
// dotted idPath, alert.DefaultIDPath when empty; "<missing>" when absent) of each
// selected alert, one per line, then a last line "selected N of M alerts".
// No per-visit cap is applied. Records whose evaluation fails are not
// selected; the summary line is still written and err then reports how many
// failed, with the first failure.
func DryRun(w io.Writer, prog *Program, records []map[string]any, idPath string) (selected, total int, err error) {
	if prog == nil {
		return 0, 0, errors.New("dry run: no filter program")
	}
	if idPath == "" {
		idPath = alert.DefaultIDPath
	}
	bw := bufio.NewWriter(w)
	var failed int
	var firstErr error
	for i, rec := range records {
		total++
		ok, mErr := prog.Match(rec)
		if mErr != nil {
			if failed == 0 {
				firstErr = fmt.Errorf("alert #%d: %w", i+1, mErr)
			}
			failed++
			continue
		}
		if !ok {
			continue
		}
		selected++
		if id, found := alert.Lookup(rec, idPath); found && id != nil {
			fmt.Fprintln(bw, formatID(id))
		} else {
			fmt.Fprintln(bw, "<missing>")
		}
	}
	fmt.Fprintf(bw, "selected %d of %d alerts\n", selected, total)
	if werr := bw.Flush(); werr != nil {
		return selected, total, fmt.Errorf("dry run: writing output: %w", werr)
	}
	if failed > 0 {
		return selected, total, fmt.Errorf("dry run: %d of %d alerts could not be evaluated (not selected); first: %w", failed, total, firstErr)
	}
	return selected, total, nil
}

func formatID(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return fmt.Sprintf("%x", x)
	default:
		return fmt.Sprint(x)
	}
}
