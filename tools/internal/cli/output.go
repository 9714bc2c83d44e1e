package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
	"sigs.k8s.io/yaml"
)

// table is what a command prints for people.
type table struct {
	header []string
	rows   [][]string
	// coloured are the columns whose values are states, coloured on a
	// terminal.
	coloured map[int]bool
}

func newTable(header ...string) *table { return &table{header: header, coloured: map[int]bool{}} }

func (t *table) row(cells ...string) { t.rows = append(t.rows, cells) }

// colour marks the columns coloured by state.
func (t *table) colour(cols ...int) *table {
	for _, c := range cols {
		t.coloured[c] = true
	}
	return t
}

// write prints the table with columns padded to their widest cell, two
// spaces apart, padding computed before any colour is added.
func (t *table) write(w io.Writer, headers, colour bool) error {
	rows := t.rows
	if headers {
		rows = append([][]string{t.header}, rows...)
	}
	widths := make([]int, len(t.header))
	for _, r := range rows {
		for i, c := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], utf8.RuneCountInString(c))
			}
		}
	}
	var b bytes.Buffer
	for ri, r := range rows {
		for i, c := range r {
			if i >= len(widths) {
				break
			}
			cell := c
			if colour && t.coloured[i] && !(headers && ri == 0) {
				cell = paint(c)
			}
			b.WriteString(cell)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}

// show prints an API answer: with -o json or yaml exactly the objects the
// server sent (JSON indented), else the table fill builds from it.
func (a *app) show(raw []byte, fill func() (*table, error)) error {
	switch a.opts.output {
	case "json":
		return writeJSON(a.env.Stdout, raw)
	case "yaml":
		return writeYAML(a.env.Stdout, raw)
	}
	t, err := fill()
	if err != nil || t == nil {
		return err
	}
	return t.write(a.env.Stdout, !a.opts.noHeaders, a.colour())
}

// structured reports whether output is for scripts (json or yaml).
func (a *app) structured() bool { return a.opts.output == "json" || a.opts.output == "yaml" }

func writeJSON(w io.Writer, raw []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, bytes.TrimSpace(raw), "", "  "); err != nil {
		return fmt.Errorf("print the server's answer: %w", err)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

func writeYAML(w io.Writer, raw []byte) error {
	y, err := yaml.JSONToYAML(raw)
	if err != nil {
		return fmt.Errorf("print the server's answer: %w", err)
	}
	_, err = w.Write(y)
	return err
}

// colour reports whether to colour output: only on a terminal, and never
// with --no-color, NO_COLOR or TERM=dumb.
func (a *app) colour() bool {
	return !a.opts.noColor && a.env.Getenv("NO_COLOR") == "" && a.env.Getenv("TERM") != "dumb" && a.env.IsTerminal(a.env.Stdout)
}

const (
	green  = "\x1b[32m"
	red    = "\x1b[31m"
	yellow = "\x1b[33m"
	faint  = "\x1b[2m"
	reset  = "\x1b[0m"
)

// paint colours a state by what it means.
func paint(s string) string {
	switch s {
	case "deployed", "succeeded", "synced", "reachable", "ready", "true":
		return green + s + reset
	case "failed", "unreachable", "unauthorized", "cancelled", "false":
		return red + s + reset
	case "queued", "running", "pending", "syncing", "progressing", "degraded", "uninstalling", "pending-install", "pending-upgrade", "pending-rollback":
		return yellow + s + reset
	case "superseded", "uninstalled", "unknown", "-":
		return faint + s + reset
	}
	return s
}

// enum prints an enum value without its type's prefix, in lower case:
// RELEASE_STATUS_PENDING_UPGRADE is "pending-upgrade", ROLE_ADMIN "admin".
func enum(e protoreflect.Enum) string {
	d := e.Descriptor()
	if e.Number() == 0 {
		return "-"
	}
	name := string(d.Values().ByNumber(e.Number()).Name())
	if v0 := d.Values().ByNumber(0); v0 != nil {
		name = strings.TrimPrefix(name, strings.TrimSuffix(string(v0.Name()), "UNSPECIFIED"))
	}
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// parseEnum finds the value of an enum whose printed name (see enum) or
// full name is s.
func parseEnum(d protoreflect.EnumDescriptor, s string) (protoreflect.EnumNumber, error) {
	vals := d.Values()
	var names []string
	for i := range vals.Len() {
		v := vals.Get(i)
		if v.Number() == 0 {
			continue
		}
		short := strings.TrimPrefix(string(v.Name()), strings.TrimSuffix(string(vals.ByNumber(0).Name()), "UNSPECIFIED"))
		short = strings.ReplaceAll(strings.ToLower(short), "_", "-")
		names = append(names, short)
		if strings.EqualFold(s, string(v.Name())) || strings.EqualFold(strings.ReplaceAll(s, "_", "-"), short) {
			return v.Number(), nil
		}
	}
	return 0, usagef("unknown %s %q: one of %s", d.Name(), s, strings.Join(names, ", "))
}

// age prints how long ago t was, as kubectl does: 42s, 5m, 3h, 12d.
func (a *app) age(t *timestamppb.Timestamp) string {
	if t == nil || (t.Seconds == 0 && t.Nanos == 0) {
		return "-"
	}
	return shortDuration(a.env.Now().Sub(t.AsTime()))
}

func shortDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < 2*time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h"
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d"
}

// orDash prints "-" for an empty cell.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// stamp prints a time in full (RFC 3339, UTC) for detail views.
func stamp(t *timestamppb.Timestamp) string {
	if t == nil || (t.Seconds == 0 && t.Nanos == 0) {
		return "-"
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

// details prints a single object as aligned "Key: value" lines.
type details struct{ kv [][2]string }

func (d *details) add(k, v string) { d.kv = append(d.kv, [2]string{k, v}) }

func (d *details) table() *table {
	t := newTable("FIELD", "VALUE")
	for _, kv := range d.kv {
		t.row(kv[0]+":", kv[1])
	}
	return t
}

// showDetails prints a single object: its API JSON with -o json|yaml, else
// the fields fill adds, one per line.
func (a *app) showDetails(raw []byte, fill func(*details) error) error {
	if a.structured() {
		return a.show(raw, nil)
	}
	d := &details{}
	if err := fill(d); err != nil {
		return err
	}
	t := d.table()
	return t.write(a.env.Stdout, false, false)
}

// labels prints a map of labels as k=v,k=v, sorted.
func labels(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}
