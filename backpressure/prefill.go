package backpressure

import "time"

// holdForPrefill records an interactive prefill pending on st from now (Config.PrefillHold)
// and returns the function that ends it, safe to call more than once. c.mu must be held.
func (c *Controller) holdForPrefill(st *backendState, now time.Time) func() {
	if st == nil || c.cfg.PrefillHold <= 0 {
		return func() {}
	}
	if st.prefills == nil {
		st.prefills = map[*time.Time]struct{}{}
	}
	at := &now
	st.prefills[at] = struct{}{}
	return func() {
		c.mu.Lock()
		_, was := st.prefills[at]
		delete(st.prefills, at)
		wake := was && len(st.prefills) == 0 && c.refused
		c.mu.Unlock()
		if wake {
			c.broadcast() // lines refused for this prefill may go now
		}
	}
}

// prefillPending reports whether an interactive prefill that began less than hold ago is
// still pending on st, and forgets older ones. c.mu must be held.
func (st *backendState) prefillPending(now time.Time, hold time.Duration) bool {
	pending := false
	for at := range st.prefills {
		if now.Sub(*at) < hold {
			pending = true
		} else {
			delete(st.prefills, at) // held long enough; its end changes nothing now
		}
	}
	return pending
}
