package report

import (
	"fmt"
	"os"
	"strings"
)

// WriteBetweenMarkers replaces what lies between the lines begin and end
// of the file at path (a generated section of a hand-written document)
// with text, keeping both markers and everything around them.
func WriteBetweenMarkers(path, begin, end, text string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(data)
	i := strings.Index(s, begin)
	if i < 0 {
		return fmt.Errorf("%s has no %q ... %q section", path, begin, end)
	}
	j := strings.Index(s[i:], end)
	if j < 0 {
		return fmt.Errorf("%s has no %q ... %q section", path, begin, end)
	}
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	s = s[:i+len(begin)] + "\n" + text + s[i+j:]
	return os.WriteFile(path, []byte(s), 0o644)
}
