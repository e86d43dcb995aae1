package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumNames are the commands tried, in order, to find the browser.
var chromiumNames = []string{
	"chromium", "chromium-browser", "google-chrome-stable", "google-chrome",
}

// BrowserOption changes how StartBrowser starts Chromium.
type BrowserOption func(*browserConfig)

// browserConfig is what the options of StartBrowser set.
type browserConfig struct {
	width, height int
}

// WindowSize sets the size of the browser window in CSS pixels, which is
// also the width of a screenshot. The default is 1280 by 800.
func WindowSize(width, height int) BrowserOption {
	return func(c *browserConfig) {
		c.width, c.height = width, height
	}
}

// StartBrowser starts headless Chromium with a fresh profile under
// t.TempDir and returns a chromedp context for its first tab. The browser
// is closed when the test ends. It has no sandbox, no GPU, no QUIC and
// no background traffic to the internet.
//
// Without Chromium the test fails under CI=true and is skipped elsewhere.
func StartBrowser(t testing.TB, opts ...BrowserOption) context.Context {
	t.Helper()
	path := requireChromium(t)
	cfg := browserConfig{width: 1280, height: 800}
	for _, o := range opts {
		o(&cfg)
	}

	dir := t.TempDir()
	logPath := filepath.Join(dir, "chromium.log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("e2e: creating the browser log: %v", err)
	}
	t.Cleanup(func() { log.Close() })

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.CombinedOutput(log),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.WindowSize(cfg.width, cfg.height),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("password-store", "basic"),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)

	// the first action starts the browser; do it now, so that a browser
	// that cannot start fails here and not in the middle of a test.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("e2e: starting %s: %v\n%s", path, err, tail(logPath, 30))
	}
	return ctx
}

// NewPrivateWindow opens a tab in a new browser context of the browser
// behind ctx: a window with its own cookies, like a private window, for a
// second person or a sign-in from scratch. It is closed when the test ends.
func NewPrivateWindow(t testing.TB, ctx context.Context) context.Context {
	t.Helper()
	win, cancel := chromedp.NewContext(ctx,
		chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(win); err != nil {
		t.Fatalf("e2e: opening a private window: %v", err)
	}
	return win
}

// SaveScreenshot writes a PNG of the whole page in the tab of ctx to path,
// creating its folder.
func SaveScreenshot(ctx context.Context, path string) error {
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return fmt.Errorf("taking screenshot: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating screenshot folder: %w", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Errorf("writing screenshot: %w", err)
	}
	return nil
}

// WaitForText waits until the visible text of the page in the tab of ctx
// contains one of texts, through any navigations on the way, and returns
// that page text; the caller tells which one it found. Listing the texts
// of error pages too ends a wait that would be in vain early. It gives up
// when ctx ends, with the text last seen.
func WaitForText(ctx context.Context, texts ...string) (string, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var seen string
	for {
		// between two pages there is no document to read; try again.
		if got, err := PageText(ctx); err == nil {
			seen = got
			if containsAny(seen, texts) {
				return seen, nil
			}
		}
		select {
		case <-ctx.Done():
			return seen, fmt.Errorf("waiting for %q on the page: %w",
				texts, ctx.Err())
		case <-tick.C:
		}
	}
}

// containsAny tells whether s contains one of subs.
func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// PageText returns the visible text of the page in the tab of ctx.
func PageText(ctx context.Context) (string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[string](
		`document.body ? document.body.innerText : ""`))
}

// ScreenshotOnFailure saves a screenshot of the tab of ctx when t fails,
// to $ARROW_E2E_ARTIFACTS, or else to arrowgate-e2e in the system's temp
// folder, named after the test, and logs where. Call it after the tab is
// opened, so that it runs before the tab is closed.
func ScreenshotOnFailure(t testing.TB, ctx context.Context) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dir := os.Getenv("ARROW_E2E_ARTIFACTS")
		if dir == "" {
			dir = filepath.Join(os.TempDir(), "arrowgate-e2e")
		}
		path := filepath.Join(dir, filepath.FromSlash(t.Name())+".png")
		// a page caught mid-navigation can keep a screenshot waiting
		// for ever; the test has failed already, so do not wait long
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := SaveScreenshot(sctx, path); err != nil {
			t.Logf("no screenshot: %v", err)
			return
		}
		t.Logf("screenshot of the page: %s", path)
	})
}

// requireChromium returns the path of the browser, or stops the test.
func requireChromium(t testing.TB) string {
	t.Helper()
	for _, name := range chromiumNames {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	missingTool(t, "Chromium", "Debian package chromium")
	return ""
}
