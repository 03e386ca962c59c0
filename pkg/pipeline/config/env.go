package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// EnvPrefix starts every variable ApplyEnv reads.
const EnvPrefix = "ARKFLOW_STATE_"

// EnvVar is one environment variable and the state field it overrides.
type EnvVar struct {
	// Name is the variable, e.g. "ARKFLOW_STATE_S3_BUCKET".
	Name string
	// Field is the field path it sets, e.g. "state.s3_config.bucket".
	Field string
}

// envSetter parses a variable's value into its field. It returns "" or why
// the value is unusable; the message never contains the value of a secret.
type envSetter func(c *Config, value string) string

type envVar struct {
	EnvVar
	set envSetter
}

// envVars is the table ApplyEnv works from, in the order the variables are
// applied and documented: the env tags of the state block's fields, in
// field order.
var envVars = stateEnvVars()

// stateEnvVars derives the variable table from the env tags under
// Config.State, so that a field, its YAML key and its variable are declared
// once, together.
func stateEnvVars() []envVar {
	var vars []envVar
	var walk func(t reflect.Type, path string, get func(*Config) reflect.Value)
	walk = func(t reflect.Type, path string, get func(*Config) reflect.Value) {
		for i := range t.NumField() {
			f := t.Field(i)
			key, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			field := get
			index := i
			at := func(c *Config) reflect.Value { return field(c).Field(index) }
			fieldPath := path
			if opts != "inline" {
				fieldPath = path + "." + key
			}
			switch {
			case f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[Secret]():
				walk(f.Type, fieldPath, at)
			case f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct:
				// Created by the first of its variables.
				walk(f.Type.Elem(), fieldPath, func(c *Config) reflect.Value {
					p := at(c)
					if p.IsNil() {
						p.Set(reflect.New(f.Type.Elem()))
					}
					return p.Elem()
				})
			case f.Tag.Get("env") != "":
				vars = append(vars, envVar{EnvVar{f.Tag.Get("env"), fieldPath}, envSetterFor(f.Type, at)})
			}
		}
	}
	walk(reflect.TypeFor[EnhancedStateConfig](), "state", func(c *Config) reflect.Value { return reflect.ValueOf(&c.State).Elem() })
	return vars
}

// envSetterFor parses a value for a field of type t, found by at.
func envSetterFor(t reflect.Type, at func(*Config) reflect.Value) envSetter {
	switch {
	case t.Kind() == reflect.String:
		return func(c *Config, v string) string {
			at(c).SetString(v)
			return ""
		}
	case t.Kind() == reflect.Bool:
		return func(c *Config, v string) string {
			b, why := envBool(v)
			if why == "" {
				at(c).SetBool(b)
			}
			return why
		}
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Bool:
		return func(c *Config, v string) string {
			b, why := envBool(v)
			if why == "" {
				at(c).Set(reflect.ValueOf(&b))
			}
			return why
		}
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		return func(c *Config, v string) string {
			i, why := envInt(v)
			switch {
			case why != "":
				return why
			case at(c).OverflowInt(i):
				return fmt.Sprintf("%d is out of range", i)
			}
			at(c).SetInt(i)
			return ""
		}
	case t.Kind() == reflect.Uint32:
		return func(c *Config, v string) string {
			i, why := envInt(v)
			switch {
			case why != "":
				return why
			case i < 0 || at(c).OverflowUint(uint64(i)):
				return fmt.Sprintf("%d is out of range", i)
			}
			at(c).SetUint(uint64(i))
			return ""
		}
	}
	panic("config: no variable parser for a field of type " + t.String())
}

// EnvVars lists the variables ApplyEnv reads, in the order it applies them.
func EnvVars() []EnvVar {
	out := make([]EnvVar, len(envVars))
	for i, v := range envVars {
		out[i] = v.EnvVar
	}
	return out
}

// ApplyEnv overrides the state block with the ARKFLOW_STATE_* variables in
// environ ("NAME=value" strings, as os.Environ returns them; the last of
// repeated names wins). A variable with an empty value is ignored, so an
// unset shell variable passed through by a container runtime changes
// nothing. Values are parsed here and range-checked by Validate, which
// names the variable. Paths from the environment are used as given
// (relative to the working directory), not resolved against the file.
//
// Every usable variable is applied; the error lists each variable that is
// unknown (a typo would otherwise be silently ignored) or does not parse.
func ApplyEnv(cfg *Config, environ []string) error {
	values := make(map[string]string)
	var unknown []string
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		if !slices.ContainsFunc(envVars, func(v envVar) bool { return v.Name == name }) {
			if !slices.Contains(unknown, name) {
				unknown = append(unknown, name)
			}
			continue
		}
		values[name] = value
	}
	var errs errorList
	for _, v := range envVars {
		value, ok := values[v.Name]
		if !ok || value == "" {
			continue
		}
		if why := v.set(cfg, value); why != "" {
			errs.add(&FieldError{File: cfg.File, Env: v.Name, Path: v.Field, Kind: ErrWrongType, Msg: why})
			continue
		}
		if cfg.origins == nil {
			cfg.origins = make(map[string]origin)
		}
		cfg.origins[v.Field] = origin{env: v.Name}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		msg := "unknown variable"
		if s := suggestEnv(name); s != "" {
			msg += "; did you mean " + s + "?"
		}
		errs.add(&FieldError{File: cfg.File, Env: name, Kind: ErrUnknownField, Msg: msg + " (docs/CONFIG.md lists them)"})
	}
	return errs.result(cfg.File)
}

func envBool(v string) (bool, string) {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, fmt.Sprintf("expected a boolean (true or false), got %q", v)
	}
	return b, ""
}

func envInt(v string) (int64, string) {
	i, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Sprintf("%s is out of range", v)
	}
	if err != nil {
		return 0, fmt.Sprintf("expected an integer, got %q", v)
	}
	return i, ""
}

// suggestEnv returns the known variable closest to name, if it is close
// enough to be a typo.
func suggestEnv(name string) string {
	best, bestDist := "", math.MaxInt
	for _, v := range envVars {
		if d := editDistance(name, v.Name); d < bestDist {
			best, bestDist = v.Name, d
		}
	}
	if bestDist <= 3 {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
