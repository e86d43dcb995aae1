package postgres

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
)

// tcpProxy stands between a store and PostgreSQL so that a test can
// take the database away and give it back: refuse connections, cut the
// ones open, or cut one at the moment the store sends a given
// statement.
type tcpProxy struct {
	t      *testing.T
	addr   string // where the proxy listens, the same across down/up
	target string // PostgreSQL's address

	mu      sync.Mutex
	ln      net.Listener // nil while down
	conns   map[net.Conn]struct{}
	trigger []byte        // cut the connection that sends this
	cut     chan struct{} // closed when trigger fired
	wg      sync.WaitGroup
}

// newProxy returns a proxy to target listening on a free local port,
// up, or down when up is false.
func newProxy(t *testing.T, target string, up bool) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	p := &tcpProxy{
		t:      t,
		addr:   ln.Addr().String(),
		target: target,
		conns:  make(map[net.Conn]struct{}),
	}
	if up {
		p.serve(ln)
	} else {
		ln.Close() // the port is now closed: connections are refused
	}
	t.Cleanup(p.stop)
	return p
}

// up starts forwarding again on the same address.
func (p *tcpProxy) up() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("listening again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// down refuses new connections and cuts every open one.
func (p *tcpProxy) down() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

// stop takes the proxy down and waits for its goroutines.
func (p *tcpProxy) stop() {
	p.down()
	p.wg.Wait()
}

// cutOn arms the proxy: the first connection whose client sends
// pattern is closed on both sides before the bytes holding it are
// passed on. The channel is closed once that happened.
func (p *tcpProxy) cutOn(pattern string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trigger = []byte(pattern)
	p.cut = make(chan struct{})
	return p.cut
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.forward(c) })
		}
	})
}

// forward pipes one client connection to PostgreSQL and back.
func (p *tcpProxy) forward(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(client, server) {
		return
	}
	defer p.untrack(client, server)

	done := make(chan struct{}, 2)
	go func() {
		io.Copy(client, server)
		done <- struct{}{}
	}()
	go func() {
		p.upstream(client, server)
		done <- struct{}{}
	}()
	<-done
	client.Close()
	server.Close()
	<-done
}

// upstream copies what the client sends, watching for the trigger.
func (p *tcpProxy) upstream(client, server net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 && p.fires(buf[:n]) {
			return
		}
		if n > 0 {
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// fires reports whether chunk holds the armed trigger, and disarms it.
func (p *tcpProxy) fires(chunk []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.trigger == nil || !bytes.Contains(chunk, p.trigger) {
		return false
	}
	p.trigger = nil
	close(p.cut)
	return true
}

// track records a pair of connections, or closes them and reports
// false when the proxy went down meanwhile.
func (p *tcpProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *tcpProxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		delete(p.conns, c)
	}
}

// silentServer accepts connections and never answers, like a database
// host that hangs. It returns its address.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
	)
	t.Cleanup(func() {
		mu.Lock()
		closed = true
		ln.Close()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				c.Close()
			}
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { io.Copy(io.Discard, c) })
		}
	})
	return ln.Addr().String()
}
