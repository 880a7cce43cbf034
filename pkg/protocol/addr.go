package protocol

import (
	"fmt"
	"net"
	"os"
)

// Advertised returns the address to advertise: adv if set, else the
// listener's, with an unspecified host replaced by the host name.
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
	}
	return net.JoinHostPort(host, port), nil
}
