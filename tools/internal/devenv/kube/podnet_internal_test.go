package kube

import (
	"net/netip"
	"testing"
)

func TestBlocks(t *testing.T) {
	var got []string
	for b := range blocks(netip.MustParsePrefix(PodPool), podBlockBits) {
		got = append(got, b.String())
	}
	if len(got) != 64 || got[0] != "10.213.0.0/22" || got[1] != "10.213.4.0/22" || got[63] != "10.213.252.0/22" {
		t.Errorf("blocks of %s: %d, first %v, last %s; want 64 from 10.213.0.0/22 to 10.213.252.0/22", PodPool, len(got), got[:2], got[len(got)-1])
	}
	var n int
	for range blocks(netip.MustParsePrefix("255.255.252.0/22"), 24) {
		n++
	}
	if n != 4 {
		t.Errorf("blocks at the top of the address space: %d, want 4", n)
	}
}
