// Package testport hands tests TCP ports to listen on later, when a
// server must be configured with its address before it starts.
package testport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// The ports Free draws from: 20000 to 32767, below Linux's ephemeral
// range (32768 and up).
const (
	first = 20000
	count = 32768 - first
)

// given holds the ports Free returned in this process.
var given = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

// Free returns a port nobody listens on right now, on any address.
//
// A port the kernel picked for a listener on port 0 would do for a
// moment only: once released, the kernel may give it to the next
// httptest server or outgoing connection, and a connection to a port of
// the ephemeral range with nobody listening can even meet itself. Free
// draws below that range instead, where the kernel never picks, and at
// random, since tests of other packages run beside this process. It
// never returns a port twice in one process.
func Free(t testing.TB) int {
	t.Helper()
	given.Lock()
	defer given.Unlock()
	for range 200 {
		port := first + rand.IntN(count)
		if given.m[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			continue
		}
		_ = l.Close()
		given.m[port] = true
		return port
	}
	t.Fatalf("finding a free port: 200 ports from %d were taken", first)
	return 0
}
