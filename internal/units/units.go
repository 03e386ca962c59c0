// Package units formats quantities for people: the CLI's tables and the
// dashboard of `arkstate top` print sizes the same way.
package units

import "fmt"

// Bytes formats n with binary prefixes and one decimal: "431 B",
// "2.0 KiB", "3.4 MiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}
