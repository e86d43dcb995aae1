package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The log files of one SimpleSAMLphp instance, in its log folder.
const (
	sspLogName       = "simplesamlphp.log"
	phpErrorLogName  = "php-errors.log"
	phpServerLogName = "php-server.log"
)

// phpServer is PHP's built-in web server serving SimpleSAMLphp.
type phpServer struct {
	cmd       *exec.Cmd
	serverLog string
	// exited is closed once the process has been waited for.
	exited chan struct{}
}

// startPHPServer starts `php -S addr` on SimpleSAMLphp's web root with
// site's configuration and four workers. PHP's errors go to a log file,
// never into a page, where they would break SimpleSAMLphp's redirects.
func startPHPServer(php string, site *sspSite,
	addr string) (*phpServer, error) {
	serverLog := filepath.Join(site.LogDir, phpServerLogName)
	out, err := os.Create(serverLog)
	if err != nil {
		return nil, fmt.Errorf("creating server log: %w", err)
	}
	cmd := exec.Command(php,
		"-d", "display_errors=0",
		"-d", "log_errors=1",
		"-d", "error_log="+filepath.Join(site.LogDir, phpErrorLogName),
		"-d", "session.save_path="+site.SessionDir,
		"-S", addr,
		"-t", sspWebRoot,
	)
	cmd.Env = append(os.Environ(),
		"SIMPLESAMLPHP_CONFIG_DIR="+site.ConfigDir,
		"PHP_CLI_SERVER_WORKERS=4",
	)
	cmd.Stdout, cmd.Stderr = out, out
	ownProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("starting php: %w", err)
	}

	s := &phpServer{cmd: cmd, serverLog: serverLog,
		exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(s.exited)
	}()
	return s, nil
}

// stop ends the server and its workers, politely first.
func (s *phpServer) stop() {
	signalGroup(s.cmd, false)
	select {
	case <-s.exited:
		return
	case <-time.After(5 * time.Second):
	}
	signalGroup(s.cmd, true)
	<-s.exited
}

// lostPortRace tells whether the server exited because its port was taken.
func (s *phpServer) lostPortRace() bool {
	data, err := os.ReadFile(s.serverLog)
	return err == nil && strings.Contains(string(data), "Failed to listen")
}
