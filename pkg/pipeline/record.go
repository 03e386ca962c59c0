package pipeline

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Record is one event: a JSON object.
type Record = map[string]any

// field returns rec[name] as a string: strings as they are, numbers and
// booleans in their JSON form.
func field(rec Record, name string) (string, error) {
	v, ok := rec[name]
	if !ok {
		return "", fmt.Errorf("record has no field %q", name)
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int:
		return strconv.Itoa(x), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case bool:
		return strconv.FormatBool(x), nil
	case nil:
		return "", fmt.Errorf("field %q is null", name)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("field %q: %w", name, err)
	}
	return string(b), nil
}

// number returns rec[name] as a float64.
func number(rec Record, name string) (float64, error) {
	switch x := rec[name].(type) {
	case float64:
		return x, nil
	case json.Number:
		return x.Float64()
	case int64:
		return float64(x), nil
	case int:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case string:
		return strconv.ParseFloat(x, 64)
	case nil:
		return 0, fmt.Errorf("record has no field %q", name)
	}
	return 0, fmt.Errorf("field %q is not a number", name)
}
