package ratelimit

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	l := New(2, 3) // 2/s, bursts of 3
	for i := range 3 {
		if ok, _ := l.Allow("a", now); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("a", now)
	if ok || wait <= 0 || wait > 500*time.Millisecond {
		t.Fatalf("4th request = %v, wait %v; want refused with a wait of at most 500ms", ok, wait)
	}
	if ok, _ := l.Allow("b", now); !ok {
		t.Error("another key shares a's bucket")
	}
	if ok, _ := l.Allow("a", now.Add(wait)); !ok {
		t.Error("refused after the advertised wait")
	}
	var off *Limiter = New(0, 0)
	for range 1000 {
		if ok, _ := off.Allow("a", now); !ok {
			t.Fatal("a disabled limiter refused a request")
		}
	}
}
