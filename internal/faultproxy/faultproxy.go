// Package faultproxy is a TCP proxy that tests put between a client and a
// server, such as a store and PostgreSQL, to take the server away and
// give it back on the same address: refuse connections, cut those open,
// or cut at the moment the client sends a given statement.
package faultproxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/arrowgate/arrowgate/internal/testport"
)

// Proxy forwards connections from Addr to its target while up.
type Proxy struct {
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener // nil while down
	conns map[net.Conn]struct{}
	trap  []byte        // a client sending this springs the trap
	whole bool          // the trap takes the whole proxy down
	fired chan struct{} // closed when the trap sprang
	wg    sync.WaitGroup
}

// New returns a proxy to target on a free loopback port, forwarding at
// once when up is true. It stops when the test ends.
func New(t testing.TB, target string, up bool) *Proxy {
	t.Helper()
	// a port of its own, outside the kernel's ephemeral range, so that
	// nothing else takes it while the proxy is down
	addr := fmt.Sprintf("127.0.0.1:%d", testport.Free(t))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	p := &Proxy{
		addr:   addr,
		target: target,
		conns:  make(map[net.Conn]struct{}),
	}
	if up {
		p.serve(ln)
	} else {
		ln.Close() // the port is closed: connections are refused
	}
	t.Cleanup(func() {
		p.Down()
		p.wg.Wait()
	})
	return p
}

// Addr is where the proxy listens, the same across Down and Up.
func (p *Proxy) Addr() string { return p.addr }

// Up starts forwarding again, unless it is forwarding already.
func (p *Proxy) Up(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	running := p.ln != nil
	p.mu.Unlock()
	if running {
		return
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// Down refuses new connections and cuts every open one.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// CutOn arms the proxy: the first connection whose client sends pattern
// is closed on both sides before the bytes holding it are passed on. The
// channel is closed once that happened.
func (p *Proxy) CutOn(pattern string) <-chan struct{} {
	return p.arm(pattern, false)
}

// DownOn is CutOn that takes the whole proxy down, as a database that
// goes away in the middle of a statement.
func (p *Proxy) DownOn(pattern string) <-chan struct{} {
	return p.arm(pattern, true)
}

func (p *Proxy) arm(pattern string, whole bool) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trap, p.whole = []byte(pattern), whole
	p.fired = make(chan struct{})
	return p.fired
}

func (p *Proxy) serve(ln net.Listener) {
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

// forward pipes one client connection to the target and back.
func (p *Proxy) forward(client net.Conn) {
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
		_, _ = io.Copy(client, server)
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

// upstream copies what the client sends, watching for the trap.
func (p *Proxy) upstream(client, server net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			if sprang, whole := p.springs(buf[:n]); sprang {
				if whole {
					p.Down()
				}
				return
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// springs reports whether chunk holds the armed trap, and disarms it.
func (p *Proxy) springs(chunk []byte) (sprang, whole bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.trap == nil || !bytes.Contains(chunk, p.trap) {
		return false, false
	}
	p.trap = nil
	close(p.fired)
	return true, p.whole
}

// track records a pair of connections, or closes them and reports false
// when the proxy went down meanwhile.
func (p *Proxy) track(conns ...net.Conn) bool {
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

func (p *Proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		delete(p.conns, c)
	}
}
