package pipeline

// aligner aligns a task's inputs at barriers, as Flink's aligned
// checkpoints do. Once barrier N arrives on an input, that input's later
// messages are held until N has arrived on every input; then the task takes
// its part of checkpoint N and the held messages are replayed in order. So
// the state a task freezes for N holds exactly the records that came before
// N on every input. A flush or the end of input takes effect once every
// input has sent one.
type aligner struct {
	blocked []bool    // inputs whose barrier has arrived
	held    []message // their messages since, in arrival order
	arrived int       // inputs blocked
	flushes int
	eofs    int
}

// alignedTask is what an aligner drives.
type alignedTask interface {
	// records processes a batch of records.
	records(recs []Record) error
	// barrier takes the task's part of checkpoint id.
	barrier(id uint64) error
	// flush emits what processors hold back (every input has flushed).
	flush() error
	// finish ends the task (every input has ended).
	finish() error
}

func newAligner(inputs int) *aligner {
	return &aligner{blocked: make([]bool, inputs)}
}

// push takes message m from input m.from and calls on for what it makes
// due; done reports that every input has ended and the task has finished.
func (a *aligner) push(m message, on alignedTask) (done bool, err error) {
	inputs := len(a.blocked)
	switch {
	case a.blocked[m.from]:
		a.held = append(a.held, m)
	case m.barrier != 0:
		a.blocked[m.from] = true
		a.arrived++
		if a.arrived < inputs {
			return false, nil
		}
		if err := on.barrier(m.barrier); err != nil {
			return false, err
		}
		a.arrived = 0
		clear(a.blocked)
		replay := a.held
		a.held = nil
		for _, h := range replay {
			// A held message may be the input's next barrier: it blocks
			// the input again, and what follows it is held again.
			if done, err := a.push(h, on); done || err != nil {
				return done, err
			}
		}
	case m.flush:
		a.flushes++
		if a.flushes == inputs {
			return false, on.flush()
		}
	case m.eof:
		a.eofs++
		if a.eofs == inputs {
			return true, on.finish()
		}
	default:
		return false, on.records(m.recs)
	}
	return false, nil
}
