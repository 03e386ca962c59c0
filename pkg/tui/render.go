package tui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/lipgloss/v2"
	"charm.land/lipgloss/v2/table"

	"github.com/arkstate/arkstate/internal/units"
	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/monitor"
)

// State is what the dashboard has fetched.
type State struct {
	// Report is the latest status; Prev the one before, for rates.
	Report, Prev *monitor.Report
	// Err is why the latest poll failed; the last good Report stays shown.
	Err error
	// Checkpoints are the store's, oldest first, when a store was given.
	Checkpoints    []checkpoint.CheckpointSummary
	CheckpointsErr error
}

// Observe records the outcome of one poll.
func (s *State) Observe(r monitor.Report, err error) {
	if err != nil {
		s.Err = err
		return
	}
	s.Err = nil
	s.Prev, s.Report = s.Report, &r
}

// maxCheckpointRows bounds the store section: the newest are the ones
// worth a glance, and `checkpoint ls` shows them all.
const maxCheckpointRows = 8

var (
	titleStyle  = lipgloss.NewStyle().Bold(true)
	dimStyle    = lipgloss.NewStyle().Faint(true)
	goodStyle   = lipgloss.NewStyle().Foreground(lipgloss.Color("2")).Bold(true)
	badStyle    = lipgloss.NewStyle().Foreground(lipgloss.Color("1")).Bold(true)
	headerStyle = lipgloss.NewStyle().Bold(true).PaddingRight(1)
	cellStyle   = lipgloss.NewStyle().PaddingRight(1)
)

// Render draws the dashboard for a terminal width columns wide.
func Render(s *State, addr string, width int) string {
	var b strings.Builder
	r := s.Report
	title := titleStyle.Render("arkstate top") + "  " + addr
	if r != nil {
		title += "  " + r.Version + "  " + r.Time.Local().Format("15:04:05")
		if r.Health.Healthy {
			title += "  " + goodStyle.Render("healthy")
		} else {
			title += "  " + badStyle.Render("UNHEALTHY")
		}
	}
	b.WriteString(title + "\n\n")
	switch {
	case r == nil && s.Err != nil:
		b.WriteString(badStyle.Render("cannot reach the job: ") + s.Err.Error() + "\n")
	case r == nil:
		b.WriteString(dimStyle.Render("waiting for the first status...") + "\n")
	default:
		b.WriteString(streamsTable(r, s.Prev, width) + "\n")
		for _, h := range r.Health.Streams {
			if !h.Healthy {
				b.WriteString(badStyle.Render(h.Stream+": ") + h.Reason + "\n")
			}
		}
		for _, st := range r.Streams {
			if rep := st.Replication; rep != nil {
				line := fmt.Sprintf("%s: remote copy %d behind (%s); %d copied (%s), %d failed attempts",
					st.Stream, rep.Queued, units.Bytes(rep.QueuedBytes), rep.Copied, units.Bytes(rep.CopiedBytes), rep.Failed)
				if rep.ReadFromRemote > 0 {
					line += fmt.Sprintf(", %d damaged local segments read remotely", rep.ReadFromRemote)
				}
				if rep.LastError != "" {
					line += "; last error: " + rep.LastError
				}
				b.WriteString(dimStyle.Render(line) + "\n")
			}
		}
		if s.Err != nil {
			b.WriteString(badStyle.Render("last poll failed: ") + s.Err.Error() + dimStyle.Render(" (showing the previous status)") + "\n")
		}
	}
	if s.Checkpoints != nil || s.CheckpointsErr != nil {
		b.WriteString("\n" + titleStyle.Render("Checkpoints in the store") + "\n")
		if s.CheckpointsErr != nil {
			b.WriteString(badStyle.Render("cannot list: ") + s.CheckpointsErr.Error() + "\n")
		} else {
			b.WriteString(checkpointsTable(s.Checkpoints, width) + "\n")
		}
	}
	b.WriteString("\n" + help.New().ShortHelpView([]key.Binding{keys.quit, keys.refresh}) + "\n")
	return b.String()
}

// streamsTable has one row per stream. Its headers are short so that it
// fits 80 columns: RECORDS is records in, CKPTS checkpoints completed (and
// failed), LAST/AGE/TOOK/SIZE describe the last completed checkpoint, and
// FROM is the checkpoint the run resumed from.
func streamsTable(r *monitor.Report, prev *monitor.Report, width int) string {
	health := map[string]monitor.StreamHealth{}
	for _, h := range r.Health.Streams {
		health[h.Stream] = h
	}
	before := map[string]monitor.Status{}
	var dt float64
	if prev != nil {
		dt = r.Time.Sub(prev.Time).Seconds()
		for _, s := range prev.Streams {
			before[s.Stream] = s
		}
	}
	rate := func(now, then int64, ok bool) string {
		if !ok || dt <= 0 || now < then {
			return "-"
		}
		return count(int64(float64(now-then)/dt + 0.5))
	}
	t := table.New().
		Headers("STREAM", "STATUS", "HEALTH", "IN/S", "OUT/S", "RECORDS", "CKPTS", "LAST", "AGE", "TOOK", "SIZE", "FROM").
		Border(lipgloss.NormalBorder()).BorderTop(false).BorderBottom(false).
		BorderLeft(false).BorderRight(false).BorderColumn(false).BorderStyle(dimStyle).
		StyleFunc(func(row, _ int) lipgloss.Style {
			if row == table.HeaderRow {
				return headerStyle
			}
			return cellStyle
		})
	for _, s := range r.Streams {
		p, seen := before[s.Stream]
		status := "running"
		switch {
		case s.Err != "":
			status = "stopped"
		case s.WaitingForLease:
			status = "standby"
		case !s.Running && !s.StartedAt.IsZero():
			status = "finished"
		case !s.Running:
			status = "starting"
		}
		h := goodStyle.Render("ok")
		if hh, ok := health[s.Stream]; ok && !hh.Healthy {
			h = badStyle.Render("BAD")
		}
		ckpts, last, age, took, size, restored := "-", "-", "-", "-", "-", "-"
		if s.Checkpointing {
			ckpts = strconv.FormatInt(s.CheckpointsCompleted, 10)
			if s.CheckpointsFailed > 0 {
				ckpts += badStyle.Render(fmt.Sprintf(" (%d failed)", s.CheckpointsFailed))
			}
			if s.LastCheckpointID > 0 {
				last = strconv.FormatUint(s.LastCheckpointID, 10)
				age = duration(r.Time.Sub(s.LastCheckpointAt))
			}
			if s.LastCheckpointDuration > 0 {
				took = duration(s.LastCheckpointDuration)
			}
			size = units.Bytes(s.CheckpointBytes)
			if s.RestoredFrom > 0 {
				restored = strconv.FormatUint(s.RestoredFrom, 10)
			}
		}
		t.Row(s.Stream, status, h, rate(s.RecordsIn, p.RecordsIn, seen), rate(s.RecordsOut, p.RecordsOut, seen),
			count(s.RecordsIn), ckpts, last, age, took, size, restored)
	}
	if width > 0 {
		t.Width(width)
	}
	return t.String()
}

func checkpointsTable(list []checkpoint.CheckpointSummary, width int) string {
	if len(list) == 0 {
		return dimStyle.Render("none yet")
	}
	t := table.New().
		Headers("ID", "KIND", "PARENT", "CREATED", "SIZE", "KEYS", "STATUS").
		Border(lipgloss.NormalBorder()).BorderTop(false).BorderBottom(false).
		BorderLeft(false).BorderRight(false).BorderColumn(false).BorderStyle(dimStyle).
		StyleFunc(func(row, _ int) lipgloss.Style {
			if row == table.HeaderRow {
				return headerStyle
			}
			return cellStyle
		})
	from := max(0, len(list)-maxCheckpointRows)
	for i := len(list) - 1; i >= from; i-- {
		c := list[i]
		parent, created, status := "-", "-", goodStyle.Render(c.Status)
		if c.Parent > 0 {
			parent = strconv.FormatUint(c.Parent, 10)
		}
		if !c.CreatedAt.IsZero() {
			created = c.CreatedAt.Local().Format("2006-01-02 15:04:05")
		}
		if c.Status != checkpoint.StatusOK {
			status = badStyle.Render(c.Status)
		}
		keys, size := count(int64(c.Keys)), units.Bytes(c.LogicalBytes)
		if !c.KeysExact {
			keys = "≤" + keys
		}
		if c.Status != checkpoint.StatusOK && c.Kind == "" {
			keys, size = "-", "-" // the manifest cannot be read
		}
		t.Row(strconv.FormatUint(c.ID, 10), c.Kind, parent, created, size, keys, status)
	}
	if width > 0 {
		t.Width(min(width, 100))
	}
	out := t.String()
	if from > 0 {
		out += "\n" + dimStyle.Render(fmt.Sprintf("and %d older (arkstate checkpoint ls)", from))
	}
	return out
}

// count prints n with a k/M suffix once it no longer reads at a glance.
func count(n int64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("%.0fM", float64(n)/1e6)
	case n >= 1_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	default:
		return strconv.FormatInt(n, 10)
	}
}

func duration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}
