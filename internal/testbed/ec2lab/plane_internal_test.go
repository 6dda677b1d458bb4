package ec2lab

import (
	"net/netip"
	"testing"
)

func TestLastAddr(t *testing.T) {
	for pfx, want := range map[string]string{
		"198.18.7.0/24":   "198.18.7.255",
		"198.18.7.128/25": "198.18.7.255",
		"198.18.7.0/25":   "198.18.7.127",
		"198.18.7.9/24":   "198.18.7.255",
		"10.0.0.0/8":      "10.255.255.255",
	} {
		if got := lastAddr(netip.MustParsePrefix(pfx)); got != netip.MustParseAddr(want) {
			t.Errorf("lastAddr(%s) = %s, want %s", pfx, got, want)
		}
	}
}
