package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// FlagGroup is one topic of a command's --help: a title and its flags, in
// the order they are listed.
type FlagGroup struct {
	Title string
	Flags []string
}

// Help describes a command's --help: the usage lines, the flag groups and
// a few examples (each a command and, after " # ", what it does).
type Help struct {
	Usage    []string
	Groups   []FlagGroup
	Examples []string
}

// Check reports a flag of fs in no group (it would be listed under
// "Other"), a flag in two groups, and a group entry that names no flag.
func (h Help) Check(fs *flag.FlagSet) error {
	var errs []error
	seen := map[string]string{}
	for _, g := range h.Groups {
		for _, name := range g.Flags {
			if prev, ok := seen[name]; ok {
				errs = append(errs, fmt.Errorf("--%s is in group %q and %q", name, prev, g.Title))
			}
			seen[name] = g.Title
			if fs.Lookup(name) == nil {
				errs = append(errs, fmt.Errorf("group %q lists --%s, which is not a flag", g.Title, name))
			}
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := seen[f.Name]; !ok {
			errs = append(errs, fmt.Errorf("--%s is in no help group: add it to the topic it belongs to", f.Name))
		}
	})
	return errors.Join(errs...)
}

// helpWidth is the width --help wraps its text to.
const helpWidth = 100

// SetUsage makes fs print h on --help: the usage lines, every flag under
// its group's title (a flag of no group under "Other", so none is ever
// hidden), and the examples.
func SetUsage(fs *flag.FlagSet, h Help) {
	fs.Usage = func() { WriteHelp(fs.Output(), fs, h) }
}

// WriteHelp writes fs's help as SetUsage describes.
func WriteHelp(w io.Writer, fs *flag.FlagSet, h Help) {
	var b strings.Builder
	for i, u := range h.Usage {
		if i == 0 {
			fmt.Fprintf(&b, "Usage: %s\n", u)
		} else {
			fmt.Fprintf(&b, "       %s\n", u)
		}
	}
	listed := map[string]bool{}
	groups := slices.Clone(h.Groups)
	var other []string
	for _, g := range h.Groups {
		for _, name := range g.Flags {
			listed[name] = true
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !listed[f.Name] {
			other = append(other, f.Name)
		}
	})
	if len(other) > 0 {
		groups = append(groups, FlagGroup{Title: "Other", Flags: other})
	}
	for _, g := range groups {
		fmt.Fprintf(&b, "\n%s:\n", g.Title)
		for _, name := range g.Flags {
			f := fs.Lookup(name)
			if f == nil {
				continue // a flag of another build of the command
			}
			writeFlag(&b, f)
		}
	}
	if len(h.Examples) > 0 {
		b.WriteString("\nExamples:\n")
		for _, e := range h.Examples {
			cmd, what, ok := strings.Cut(e, " # ")
			if ok {
				fmt.Fprintf(&b, "  # %s\n", what)
			}
			fmt.Fprintf(&b, "  %s\n", cmd)
		}
	}
	_, _ = io.WriteString(w, b.String())
}

// writeFlag writes one flag: its name and value type, then its usage
// wrapped and indented, with its default when it is not the zero value.
func writeFlag(b *strings.Builder, f *flag.Flag) {
	kind, usage := flag.UnquoteUsage(f)
	head := "  --" + f.Name
	if kind != "" {
		head += " " + kind
	}
	if def := f.DefValue; def != "" && def != "0" && def != "false" && def != "[]" && def != "0s" {
		if kind == "string" || strings.Contains(def, " ") {
			def = fmt.Sprintf("%q", def)
		}
		usage += " (default " + def + ")"
	}
	const indent = 28
	words := strings.Fields(usage)
	line := head
	if len(head) >= indent-1 {
		b.WriteString(head + "\n")
		line = strings.Repeat(" ", indent)
	} else {
		line += strings.Repeat(" ", indent-len(head))
	}
	start := len(line)
	for _, word := range words {
		if len(line) > start && len(line)+1+len(word) > helpWidth {
			b.WriteString(line + "\n")
			line = strings.Repeat(" ", indent)
			start = indent
		}
		if len(line) > start {
			line += " "
		}
		line += word
	}
	b.WriteString(line + "\n")
}
