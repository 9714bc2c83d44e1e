package releases

import (
	"context"
	"testing"
	"time"
)

// TestEvery: with an interval far longer than the test, atOnce decides
// whether a pass runs at all; with a short one, passes keep coming until
// the context ends, and every returns then.
func TestEvery(t *testing.T) {
	for _, atOnce := range []bool{true, false} {
		ctx, cancel := context.WithCancel(t.Context())
		passes := 0
		done := make(chan error, 1)
		ran := make(chan struct{}, 1)
		go func() {
			done <- every(ctx, time.Hour, atOnce, func(context.Context) { passes++; ran <- struct{}{} })
		}()
		if atOnce {
			<-ran
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("atOnce=%v: every returned %v", atOnce, err)
		}
		if want := map[bool]int{true: 1, false: 0}[atOnce]; passes != want {
			t.Errorf("atOnce=%v: %d passes before the first interval; want %d", atOnce, passes, want)
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- every(ctx, time.Millisecond, false, func(context.Context) { ran <- struct{}{} }) }()
	for range 3 {
		<-ran
	}
	cancel()
	// A pass in progress when the context ends finishes; none starts after.
	select {
	case <-ran:
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
