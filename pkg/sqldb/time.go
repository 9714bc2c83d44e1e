package sqldb

import "time"

// Micros is t as stored: unix microseconds, 0 for the zero time. Columns
// hold times this way because SQLite and PostgreSQL agree on BIGINT.
func Micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// FromMicros is Micros undone, in UTC; 0 is the zero time.
func FromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}
