// Package docs holds no code: its test keeps docs/ARCHITECTURE.md true to
// the tree, since readers take its paths and its import table on trust.
package docs

import (
	"go/build"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/arkstate/arkstate/"

func readArchitecture(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every path the page names, in code spans or links, exists.
func TestArchitecture_Paths(t *testing.T) {
	text := readArchitecture(t)
	pathRE := regexp.MustCompile("`((?:pkg|cmd|internal|docs|bench|testdata)/[A-Za-z0-9_./-]+)`")
	linkRE := regexp.MustCompile(`\]\(([A-Za-z0-9_./-]+\.md)\)`)
	n := 0
	for _, m := range pathRE.FindAllStringSubmatch(text, -1) {
		n++
		if _, err := os.Stat(filepath.Join("..", filepath.FromSlash(m[1]))); err != nil {
			t.Errorf("ARCHITECTURE.md names %s: %v", m[1], err)
		}
	}
	for _, m := range linkRE.FindAllStringSubmatch(text, -1) {
		n++
		if _, err := os.Stat(filepath.FromSlash(m[1])); err != nil {
			t.Errorf("ARCHITECTURE.md links %s: %v", m[1], err)
		}
	}
	if n < 10 {
		t.Fatalf("found only %d paths in ARCHITECTURE.md; has the page changed shape?", n)
	}
}

// The package table's import column is what the packages import (outside
// internal/ and tests).
func TestArchitecture_Imports(t *testing.T) {
	rowRE := regexp.MustCompile("(?m)^\\| `(pkg/[a-z/]+)` \\|.*\\| ([^|]*) \\|$")
	rows := rowRE.FindAllStringSubmatch(readArchitecture(t), -1)
	if len(rows) < 8 {
		t.Fatalf("found %d package rows in ARCHITECTURE.md; has the table changed shape?", len(rows))
	}
	for _, row := range rows {
		pkg, column := row[1], strings.TrimSpace(row[2])
		var want []string
		if column != "nothing" {
			for _, name := range strings.Split(column, ",") {
				want = append(want, "pkg/"+strings.Trim(strings.TrimSpace(name), "`"))
			}
		}
		bp, err := build.ImportDir(filepath.Join("..", pkg), 0)
		if err != nil {
			t.Errorf("%s: %v", pkg, err)
			continue
		}
		var got []string
		for _, imp := range bp.Imports {
			if rel, ok := strings.CutPrefix(imp, module); ok && !strings.HasPrefix(rel, "internal/") {
				got = append(got, rel)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("ARCHITECTURE.md says %s imports %q; it imports %q", pkg, want, got)
		}
	}
}
