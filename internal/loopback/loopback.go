// Package loopback finds free ports on 127.0.0.1 for the servers tests
// start (sshd, PostgreSQL, a real OpenStack): tests talk to loopback only.
package loopback

import "net"

// FreePort is a TCP port on 127.0.0.1 that nothing listened on a moment
// ago. Another process may take it before the caller does; the servers
// started on it fail clearly if so.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
