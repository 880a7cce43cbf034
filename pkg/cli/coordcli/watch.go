package coordcli

import (
	"errors"
	"net"
	"syscall"
)

// DefaultMetricsAddr is the coordinator's default HTTP address (/metrics
// and the dashboard): loopback only, so nothing is exposed unasked. When
// the port is taken (another run, tests in parallel) and the flag was not
// given, the coordinator falls back to a port the kernel picks and says so.
const DefaultMetricsAddr = "127.0.0.1:8070"

// addrInUse reports whether err is a listen failure because the port is taken.
func addrInUse(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.EADDRINUSE) || (errors.As(err, &op) && errors.Is(op.Err, syscall.EADDRINUSE))
}

// dashboardURL is the page's address for a bound listener address.
func dashboardURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String() + "/"
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}
