package backup

import (
	"testing"
	"time"
)

func TestJitteredBackoff(t *testing.T) {
	const s = time.Second
	for _, tc := range []struct {
		name         string
		initial, max time.Duration
		// nominal are the delays before jitter, one per step; each step must be within ±20% of its own.
		nominal []time.Duration
	}{
		{
			name: "upload retries double from a second and stay at a minute", initial: s, max: time.Minute,
			nominal: []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, time.Minute, time.Minute, time.Minute},
		},
		{
			name: "pass retries double from 30 s and stop doubling at a daily interval", initial: 30 * s, max: 24 * time.Hour,
			nominal: []time.Duration{30 * s, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute,
				32 * time.Minute, 64 * time.Minute, 128 * time.Minute, 256 * time.Minute, 512 * time.Minute,
				1024 * time.Minute, 24 * time.Hour, 24 * time.Hour},
		},
		{
			name: "an interval shorter than the first delay is the delay from the start", initial: 30 * s, max: 10 * s,
			nominal: []time.Duration{10 * s, 10 * s, 10 * s},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lowest, highest := make([]time.Duration, len(tc.nominal)), make([]time.Duration, len(tc.nominal))
			for range 500 {
				b := jitteredBackoff(tc.initial, tc.max)
				for i, want := range tc.nominal {
					got := b.Step()
					if got < want*8/10 || got > want*12/10 {
						t.Fatalf("step %d: %s, want within ±20%% of %s", i+1, got, want)
					}
					if lowest[i] == 0 || got < lowest[i] {
						lowest[i] = got
					}
					highest[i] = max(highest[i], got)
				}
			}
			// Jitter must spread the delays on both sides of the nominal one, not only add to it.
			for i, want := range tc.nominal {
				if lowest[i] >= want*9/10 || highest[i] <= want*11/10 {
					t.Errorf("step %d: delays from %s to %s over 500 runs, want them spread over %s ±20%%", i+1, lowest[i], highest[i], want)
				}
			}
		})
	}
}
