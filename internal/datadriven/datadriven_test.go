package datadriven

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	text := `# comment
echo a b=1
one
two
----
one two

noinput
----
`
	cases, tail, err := Parse("f", text)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 2 || tail != "" {
		t.Fatalf("%d cases, tail %q", len(cases), tail)
	}
	c := cases[0]
	if v, ok := c.Arg("b"); c.Cmd != "echo" || !ok || v != "1" || c.Input != "one\ntwo" || c.Expected != "one two" || c.Pos != "f:2" {
		t.Fatalf("case %+v", c)
	}
	if _, ok := c.Arg("c"); ok {
		t.Fatal("Arg found a key the case lacks")
	}
	if cases[1].Expected != "" || cases[1].Input != "" {
		t.Fatalf("case %+v", cases[1])
	}
	for _, bad := range []string{"cmd\ninput\n", "cmd\ninput\n\nmore\n----\n"} {
		if _, _, err := Parse("f", bad); err == nil || !strings.Contains(err.Error(), "f:1") {
			t.Errorf("Parse(%q) = %v; want an error at f:1", bad, err)
		}
	}
}
