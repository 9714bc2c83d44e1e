package sqldb

import (
	"testing"
	"time"
)

func TestMicros(t *testing.T) {
	if Micros(time.Time{}) != 0 || !FromMicros(0).IsZero() {
		t.Error("the zero time is not 0")
	}
	at := time.Date(2026, 12, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600))
	if got := FromMicros(Micros(at)); !got.Equal(at.Truncate(time.Microsecond)) || got.Location() != time.UTC {
		t.Errorf("round trip of %v = %v", at, got)
	}
}
