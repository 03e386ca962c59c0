package tui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/monitor"
)

// Options configure the dashboard.
type Options struct {
	// Addr is the monitor's base URL, e.g. http://127.0.0.1:9090.
	Addr string
	// Interval is the time between polls; 0 means one second.
	Interval time.Duration
	// Checkpoints lists the store's checkpoints, or is nil for no store.
	Checkpoints func(context.Context) ([]checkpoint.CheckpointSummary, error)
	// Client fetches /status; nil means a client with a timeout of Interval.
	Client *http.Client
}

// FetchStatus gets and decodes addr's /status.
func FetchStatus(ctx context.Context, client *http.Client, addr string) (monitor.Report, error) {
	var r monitor.Report
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(addr, "/")+"/status", nil)
	if err != nil {
		return r, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return r, fmt.Errorf("GET %s: %w", req.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return r, fmt.Errorf("GET %s: %s", req.URL, resp.Status)
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("GET %s: not an arkstate status: %w", req.URL, err)
	}
	return r, nil
}

// New returns the dashboard's model, ready for tea.NewProgram.
func New(opts Options) tea.Model {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: opts.Interval}
	}
	return &model{opts: opts, width: 100}
}

// keys are the dashboard's key bindings; Render shows their help.
var keys = struct{ quit, refresh key.Binding }{
	quit:    key.NewBinding(key.WithKeys("q", "esc", "ctrl+c"), key.WithHelp("q", "quit")),
	refresh: key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "refresh now")),
}

type model struct {
	opts  Options
	width int
	state State
	// polls in flight, so that a slow server does not pile requests up
	fetching, listing bool
	// ticking is set while the next poll is scheduled: one schedule at a
	// time, however often r is pressed.
	ticking bool
}

type (
	tickMsg   struct{}
	reportMsg struct {
		r   monitor.Report
		err error
	}
	checkpointsMsg struct {
		list []checkpoint.CheckpointSummary
		err  error
	}
)

func (m *model) Init() tea.Cmd { return m.poll() }

// poll starts the fetches that are not already running.
func (m *model) poll() tea.Cmd {
	var cmds []tea.Cmd
	if !m.fetching {
		m.fetching = true
		cmds = append(cmds, func() tea.Msg {
			ctx, cancel := context.WithTimeout(context.Background(), m.opts.Interval+time.Second)
			defer cancel()
			r, err := FetchStatus(ctx, m.opts.Client, m.opts.Addr)
			return reportMsg{r, err}
		})
	}
	if m.opts.Checkpoints != nil && !m.listing {
		m.listing = true
		list := m.opts.Checkpoints
		cmds = append(cmds, func() tea.Msg {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			l, err := list(ctx)
			return checkpointsMsg{l, err}
		})
	}
	return tea.Batch(cmds...)
}

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width = msg.Width
	case tea.KeyPressMsg:
		switch {
		case key.Matches(msg, keys.quit):
			return m, tea.Quit
		case key.Matches(msg, keys.refresh):
			return m, m.poll()
		}
	case tickMsg:
		m.ticking = false
		return m, m.poll()
	case reportMsg:
		m.fetching = false
		m.state.Observe(msg.r, msg.err)
		// The next poll is scheduled from the answer, not a fixed clock,
		// so a slow server is polled less often instead of piling up.
		if !m.ticking {
			m.ticking = true
			return m, tea.Tick(m.opts.Interval, func(time.Time) tea.Msg { return tickMsg{} })
		}
	case checkpointsMsg:
		m.listing = false
		m.state.Checkpoints, m.state.CheckpointsErr = msg.list, msg.err
	}
	return m, nil
}

func (m *model) View() tea.View {
	v := tea.NewView(Render(&m.state, m.opts.Addr, m.width))
	v.AltScreen = true
	v.WindowTitle = "arkstate top"
	return v
}
