package protocol

import (
	"fmt"
	"net"
	"os"
)

// Advertised returns the address to advertise: adv if set, else the
// listener's, with an unspecified host replaced by the host's own IP address
// (or its name when that does not resolve).
func Advertised(adv, listen string) (string, error) {
	if adv != "" {
		if _, _, err := net.SplitHostPort(adv); err != nil {
			return "", fmt.Errorf("%q is not host:port: %w", adv, err)
		}
		return adv, nil
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		h, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("cannot derive an address from %s: %w", listen, err)
		}
		host = h
		// Prefer the host name's first non-loopback IP (a container's or
		// pod's own address, from /etc/hosts), which every peer can dial
		// without a DNS entry for the host name.
		if ips, err := net.LookupIP(h); err == nil {
			for _, ip := range ips {
				if !ip.IsLoopback() && ip.To4() != nil {
					host = ip.String()
					break
				}
			}
		}
	}
	return net.JoinHostPort(host, port), nil
}
