package fetch

import (
	"net/netip"
	"strconv"
	"strings"
)

// parseLegacyIPv4 reads host as the URL standard's IPv4 parser does, which
// is how browsers, curl and inet_aton read it: up to four dot-separated
// numbers, each decimal, octal (leading 0) or hex (0x), the last filling
// the remaining bytes, so 2130706433, 0x7f000001, 017700000001, 127.1 and
// 0177.0.0.1 are all 127.0.0.1. Go's resolver would send such a host to DNS
// instead; anything else on the way might not. numeric reports whether the
// host ends in a number, which makes it an address to the standard (a DNS
// name's last label is never numeric); ok whether it is a valid one.
func parseLegacyIPv4(host string) (ip netip.Addr, numeric, ok bool) {
	parts := strings.Split(host, ".")
	if !isNumber(parts[len(parts)-1]) {
		return netip.Addr{}, false, false
	}
	if len(parts) > 4 {
		return netip.Addr{}, true, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		v, ok := parseIPv4Number(p)
		if !ok {
			return netip.Addr{}, true, false
		}
		vals[i] = v
	}
	var n uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 255 {
			return netip.Addr{}, true, false
		}
		n |= v << (8 * (3 - i))
	}
	last := vals[len(vals)-1]
	if last >= 1<<(8*(5-len(vals))) {
		return netip.Addr{}, true, false
	}
	n |= last
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true, true
}

// isNumber reports whether s is all decimal digits, or 0x and hex digits.
func isNumber(s string) bool {
	if s == "" {
		return false
	}
	if rest, ok := cutHexPrefix(s); ok {
		return strings.Trim(rest, "0123456789abcdefABCDEF") == ""
	}
	return strings.Trim(s, "0123456789") == ""
}

func parseIPv4Number(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base := 10
	if rest, ok := cutHexPrefix(s); ok {
		if rest == "" {
			return 0, true
		}
		s, base = rest, 16
	} else if len(s) > 1 && s[0] == '0' {
		s, base = s[1:], 8
	}
	v, err := strconv.ParseUint(s, base, 64)
	return v, err == nil
}

func cutHexPrefix(s string) (string, bool) {
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		return s[2:], true
	}
	return s, false
}
