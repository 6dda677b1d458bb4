package tfcli

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Text is the command's output, a line each.
func (r Run) Text() string {
	var b strings.Builder
	for _, l := range r.Lines {
		b.WriteString(l.Text + "\n")
	}
	return b.String()
}

// DecodeJSON decodes the output of a command that prints one JSON
// document, such as `terraform output -json`.
func (r Run) DecodeJSON(v any) error {
	if err := json.Unmarshal([]byte(r.Text()), v); err != nil {
		return fmt.Errorf("output of terraform %s (%s): %w", strings.Join(r.Args, " "), r.Out, err)
	}
	return nil
}

// Tail is the last n lines of the output.
func (r Run) Tail(n int) string {
	var out []string
	for _, l := range r.Lines[max(0, len(r.Lines)-n):] {
		out = append(out, l.Text)
	}
	return strings.Join(out, "\n")
}

// ErrorSummary is the distinct errors Terraform printed, each with its
// detail on one line and how often it came ("2× Error title: detail; ..."),
// or the exit code when it printed none.
func (r Run) ErrorSummary() string {
	var out []string
	seen := map[string]int{}
	for i, l := range r.Lines {
		if !strings.HasPrefix(l.Text, "Error: ") {
			continue
		}
		// The detail follows the "with ..." and "on ..." lines and a blank.
		var detail []string
		for _, m := range r.Lines[i+1:] {
			t := strings.TrimSpace(m.Text)
			if strings.HasPrefix(m.Text, "Error: ") || strings.HasPrefix(t, "Releasing state lock") {
				break
			}
			if t == "" || strings.HasPrefix(t, "with ") || strings.HasPrefix(t, "on ") || strings.Contains(t, " resource \"") {
				if len(detail) > 0 {
					break
				}
				continue
			}
			detail = append(detail, t)
		}
		msg := strings.TrimPrefix(l.Text, "Error: ") + ": " + strings.Join(detail, " ")
		if seen[msg] == 0 {
			out = append(out, msg)
		}
		seen[msg]++
	}
	if len(out) == 0 {
		return fmt.Sprintf("exit %d", r.Code)
	}
	for i, msg := range out {
		out[i] = fmt.Sprintf("%d× %s", seen[msg], msg)
	}
	return strings.Join(out, "; ")
}
