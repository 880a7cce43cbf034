package cli

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestWriteHelp(t *testing.T) {
	fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
	fs.String("name", "x", "the name")
	fs.Int("count", 0, "how many")
	fs.Bool("fast", false, "go fast")
	fs.String("a-very-long-flag-name-indeed", "", "a long one")
	fs.String("loose", "", "in no group")
	fs.String("words", "", strings.Repeat("word ", 40))
	var out bytes.Buffer
	WriteHelp(&out, fs, Help{
		Usage:    []string{"cmd [flags]", "cmd sub"},
		Groups:   []FlagGroup{{"First", []string{"name", "count", "a-very-long-flag-name-indeed", "words", "gone"}}, {"Second", []string{"fast"}}},
		Examples: []string{"cmd --name y # name it y", "cmd"},
	})
	help := out.String()
	tests := []struct{ name, want string }{
		{"usage lines", "Usage: cmd [flags]\n       cmd sub\n"},
		{"a default that is not zero", `  --name string             the name (default "x")` + "\n"},
		{"a zero default is not shown", "  --count int               how many\n"},
		{"groups in order", "\nFirst:\n  --name"},
		{"second group", "\nSecond:\n  --fast                    go fast\n"},
		{"a long name gets its own line", "  --a-very-long-flag-name-indeed string\n                            a long one\n"},
		{"an ungrouped flag is not hidden", "\nOther:\n  --loose string            in no group\n"},
		{"examples with what they do", "\nExamples:\n  # name it y\n  cmd --name y\n  cmd\n"},
	}
	for _, tc := range tests {
		if !strings.Contains(help, tc.want) {
			t.Errorf("%s: help has no %q:\n%s", tc.name, tc.want, help)
		}
	}
	if strings.Contains(help, "gone") {
		t.Error("a flag that does not exist was listed")
	}
	for i, line := range strings.Split(help, "\n") {
		if len(line) > helpWidth {
			t.Errorf("line %d is %d characters, want at most %d: %q", i+1, len(line), helpWidth, line)
		}
	}
}

func TestWorkerHelpGrouped(t *testing.T) {
	opts := DefaultWorkerOptions()
	fs := WorkerFlags(&opts, io.Discard)
	if err := WorkerHelp.Check(fs); err != nil {
		t.Error(err)
	}
	var out bytes.Buffer
	fs.SetOutput(&out)
	if code, ok := ParseArgs(fs, []string{"--help"}, &out); ok || code != 0 {
		t.Fatalf("--help: code %d, go on %v; want 0 and stop", code, ok)
	}
	help := out.String()
	last := -1
	for _, g := range WorkerHelp.Groups {
		i := strings.Index(help, "\n"+g.Title+":\n")
		if i < 0 || i < last {
			t.Errorf("group %q missing or out of order", g.Title)
		}
		last = i
	}
	if strings.Contains(help, "\nOther:\n") || !strings.Contains(help, "Examples:") {
		t.Errorf("help:\n%s", help)
	}
}

func TestHelpCheck(t *testing.T) {
	fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
	fs.String("a", "", "")
	fs.String("b", "", "")
	tests := []struct {
		name   string
		groups []FlagGroup
		want   string
	}{
		{"all grouped", []FlagGroup{{"G", []string{"a"}}, {"H", []string{"b"}}}, ""},
		{"ungrouped", []FlagGroup{{"G", []string{"a"}}}, "--b is in no help group"},
		{"twice", []FlagGroup{{"G", []string{"a", "b"}}, {"H", []string{"a"}}}, `--a is in group "G" and "H"`},
		{"unknown", []FlagGroup{{"G", []string{"a", "b", "c"}}}, `group "G" lists --c, which is not a flag`},
	}
	for _, tc := range tests {
		err := Help{Groups: tc.groups}.Check(fs)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}
