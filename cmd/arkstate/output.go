package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/olekukonko/tablewriter"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/arkstate/arkstate/pkg/monitor"
)

// outputFlag is the --output flag every command shares: table for people,
// json and yaml for programs (a stable contract; readers ignore unknown fields).
type outputFlag struct {
	format    string
	noHeaders bool
}

func (o *outputFlag) addFlag(cmd *cobra.Command) {
	o.format = "table"
	cmd.Flags().StringVarP(&o.format, "output", "o", "table", "output format: table, json or yaml")
	cmd.Flags().BoolVar(&o.noHeaders, "no-headers", false, "leave out the header line of tables (for scripts)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputFormats, cobra.ShellCompDirectiveNoFileComp))
}

// schemaVersion is written as schema_version first in every document a
// command prints; /status shares the vocabulary and its version.
const schemaVersion = monitor.SchemaVersion

// versionedJSON is v's JSON with schema_version as its first field.
func versionedJSON(v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(j) < 2 || j[0] != '{' {
		return nil, fmt.Errorf("internal error: a %T is not a JSON object", v)
	}
	head := fmt.Sprintf(`{"schema_version":%d`, schemaVersion)
	if string(j) == "{}" {
		return []byte(head + "}"), nil
	}
	return append([]byte(head+","), j[1:]...), nil
}

// textOrB64 is the vocabulary's rule for bytes: a field holds them as
// text when they are valid UTF-8, else <field>_b64 holds them in base64.
func textOrB64(b []byte) (text, b64 string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return "", base64.StdEncoding.EncodeToString(b)
}

// outputFormats are the values of --output.
var outputFormats = []string{"table", "json", "yaml"}

// addJSONLinesFlag is addFlag for a command that only writes JSON lines
// (state dump): --output json is accepted for scripts that pass it to
// every command, and is the default.
func (o *outputFlag) addJSONLinesFlag(cmd *cobra.Command) {
	o.format = "json"
	cmd.Flags().StringVarP(&o.format, "output", "o", "json", "output format: json (JSON lines; table is accepted and gives the same)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json"}, cobra.ShellCompDirectiveNoFileComp))
}

func (o *outputFlag) validate() error {
	switch o.format {
	case "table", "json", "yaml":
		return nil
	}
	return &usageError{fmt.Errorf("%w %q (want table, json or yaml)", errUnknownOutput, o.format)}
}

// render writes v as JSON or YAML, or calls table to lay it out for a terminal.
func (o *outputFlag) render(w io.Writer, v any, table func(*tableWriter)) error {
	if err := o.validate(); err != nil {
		return err
	}
	switch o.format {
	case "json":
		j, err := versionedJSON(v)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := json.Indent(&b, j, "", "  "); err != nil {
			return err
		}
		b.WriteByte('\n')
		_, err = w.Write(b.Bytes())
		return err
	case "yaml":
		j, err := versionedJSON(v)
		if err != nil {
			return err
		}
		b, err := yaml.JSONToYAML(j)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	t := tableWriter{noHeaders: o.noHeaders}
	table(&t)
	return t.flush(w)
}

// tableWriter collects rows and renders them with tablewriter. A table with
// no header is a two-column key/value listing.
type tableWriter struct {
	header    []string
	rows      [][]string
	noHeaders bool // --no-headers
}

func (t *tableWriter) setHeader(cols ...string) { t.header = cols }

func (t *tableWriter) row(cells ...any) {
	r := make([]string, len(cells))
	for i, c := range cells {
		r[i] = fmt.Sprint(c)
	}
	t.rows = append(t.rows, r)
}

func (t *tableWriter) flush(w io.Writer) error {
	if t.header == nil {
		// Key/value listings read better without a grid.
		width := 0
		for _, r := range t.rows {
			width = max(width, len(r[0])+1)
		}
		for _, r := range t.rows {
			if _, err := fmt.Fprintf(w, "%-*s  %s\n", width, r[0]+":", strings.Join(r[1:], " ")); err != nil {
				return err
			}
		}
		return nil
	}
	if !isTerminal(w) {
		return t.flushPlain(w)
	}
	tw := tablewriter.NewWriter(w)
	if !t.noHeaders {
		tw.Header(t.header)
	}
	if err := tw.Bulk(t.rows); err != nil {
		return err
	}
	return tw.Render()
}

// flushPlain writes the table for a script or a file: columns aligned
// with spaces, no box drawing, one line per row (a newline in a cell
// becomes a space), the header upper-cased unless noHeaders.
func (t *tableWriter) flushPlain(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(cells []string) {
		for i, c := range cells {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, strings.NewReplacer("\n", " ", "\t", " ").Replace(c))
		}
		fmt.Fprint(tw, "\n")
	}
	if !t.noHeaders {
		header := make([]string, len(t.header))
		for i, h := range t.header {
			header[i] = strings.ToUpper(h)
		}
		line(header)
	}
	for _, r := range t.rows {
		line(r)
	}
	return tw.Flush()
}

// marshalYAML renders v as YAML with exactly the fields, names and values
// of its JSON: it goes through JSON, so every JSON string stays a string.
// Marshaling v directly would write a time.Time as a bare timestamp, which
// YAML 1.1 readers (PyYAML) turn into a datetime cut to microseconds.
func marshalYAML(v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(j)
}

// writeYAMLDocument writes v as one document of a YAML stream (a command
// that streams records: diff --keys, txlog replay).
func writeYAMLDocument(out io.Writer, v any) error {
	b, err := marshalYAML(v)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(out, "---\n"); err != nil {
		return err
	}
	_, err = out.Write(b)
	return err
}

// progressBar returns a progress callback that draws a bar of bytes on w
// when w is a terminal (nil otherwise, so callers skip the work), and a
// function that ends the bar.
func progressBar(w io.Writer, desc string) (progress func(done, total int64), finish func()) {
	return newProgressBar(w, desc, true)
}

// progressReader counts the bytes read through it for a progress bar;
// total is -1 when the size is unknown (a pipe), which draws a spinner.
type progressReader struct {
	r           io.Reader
	done, total int64
	progress    func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	p.progress(p.done, p.total)
	return n, err
}

// progressSteps is progressBar for a count of steps that are not bytes
// (state dump's key groups).
func progressSteps(w io.Writer, desc string) (progress func(done, total int64), finish func()) {
	return newProgressBar(w, desc, false)
}

func newProgressBar(w io.Writer, desc string, showBytes bool) (progress func(done, total int64), finish func()) {
	if !isTerminal(w) {
		return nil, func() {}
	}
	var bar *progressbar.ProgressBar
	return func(done, total int64) {
			if bar == nil {
				opts := []progressbar.Option{
					progressbar.OptionSetWriter(w),
					progressbar.OptionSetDescription(desc),
					progressbar.OptionThrottle(100 * time.Millisecond),
					progressbar.OptionClearOnFinish(),
				}
				if showBytes {
					opts = append(opts, progressbar.OptionShowBytes(true))
				} else {
					opts = append(opts, progressbar.OptionShowCount())
				}
				bar = progressbar.NewOptions64(total, opts...)
			}
			_ = bar.Set64(done)
		}, func() {
			if bar != nil {
				_ = bar.Finish()
			}
		}
}
