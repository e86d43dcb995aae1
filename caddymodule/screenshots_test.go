package caddymodule_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/arrowgate/arrowgate/internal/e2e"
)

// screenSize is a window the gateway's pages must read well in.
type screenSize struct {
	name          string
	width, height int64
	mobile        bool
}

// screenSizes are a phone held upright and a laptop's window.
var screenSizes = []screenSize{
	{"phone", 390, 844, true},
	{"desktop", 1280, 800, false},
}

// screenshotDir is where the journeys write screenshots: the folder
// $ARROW_SCREENSHOTS names, taken from the repository root when
// relative, or arrowgate-screenshots in the system's temp folder.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ARROW_SCREENSHOTS")
	if dir == "" {
		return filepath.Join(os.TempDir(), "arrowgate-screenshots")
	}
	if filepath.IsAbs(dir) {
		return dir
	}
	// go test runs in the package's folder, one below the root
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatalf("finding the repository root: %v", err)
	}
	return filepath.Join(root, dir)
}

// screenshots saves the page in tab as name-phone.png and
// name-desktop.png, and the same without the stylesheet under unstyled/,
// then puts the window back as it was. It fails the test when the page
// is wider than a size, since the person would have to scroll sideways.
func (r *journeyRig) screenshots(t *testing.T, tab context.Context,
	name string) {
	t.Helper()
	defer func() {
		_ = chromedp.Do(tab, setStylesheets(true), chromedp.ResetViewport())
	}()
	for _, styled := range []bool{true, false} {
		dir := r.shots
		if !styled {
			dir = filepath.Join(dir, "unstyled")
		}
		if err := chromedp.Do(tab, setStylesheets(styled)); err != nil {
			t.Fatalf("switching the stylesheet: %v", err)
		}
		for _, size := range screenSizes {
			path := filepath.Join(dir, name+"-"+size.name+".png")
			shoot(t, tab, size, path)
		}
	}
}

// shoot sizes the window, checks nothing sticks out sideways, and saves
// a screenshot of the whole page to path.
func shoot(t *testing.T, tab context.Context, size screenSize,
	path string) {
	t.Helper()
	opts := []chromedp.EmulateViewportOption{chromedp.EmulatePortrait}
	if size.mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	if err := chromedp.Do(tab,
		chromedp.EmulateViewport(size.width, size.height, opts...),
	); err != nil {
		t.Fatalf("sizing the window for a %s: %v", size.name, err)
	}
	wide, err := chromedp.Run(tab, chromedp.Evaluate[int64](
		`document.documentElement.scrollWidth`))
	if err != nil {
		t.Fatalf("measuring the page: %v", err)
	}
	if wide > size.width {
		t.Errorf("%s: the page is %d pixels wide on a %s %d wide",
			filepath.Base(path), wide, size.name, size.width)
	}
	if err := e2e.SaveScreenshot(tab, path); err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
}

// setStylesheets turns the page's stylesheets on or off, to see the page
// as a browser that could not load them, or a reader mode, shows it.
func setStylesheets(on bool) chromedp.Action[chromedp.Void] {
	js := fmt.Sprintf(`document.querySelectorAll("link[rel=stylesheet]")
		.forEach(l => { l.disabled = %t }); true`, !on)
	return chromedp.Func(func(ctx context.Context,
		_ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		return err
	})
}
