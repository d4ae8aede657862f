package bases

import (
	"fmt"
	"strings"
)

// UnknownRecipeError reports a base name with no recipe.
type UnknownRecipeError struct {
	Name  string
	Known []string
}

func (e *UnknownRecipeError) Error() string {
	return fmt.Sprintf("no runtime base named %q (known: %s)", e.Name, strings.Join(e.Known, ", "))
}

// RecipeError reports a mistake in a recipe or lock file.
type RecipeError struct {
	// File is the recipe or lock file: "static.yaml".
	File string
	// Field locates the mistake: "packages[3].drop[0]".
	Field string
	Err   error
}

func (e *RecipeError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.File, e.Field, e.Err)
}

func (e *RecipeError) Unwrap() error { return e.Err }

// StaleLockError reports a recipe whose lock is missing or was made for
// another version of the recipe.
type StaleLockError struct {
	Recipe string
	Reason string
}

func (e *StaleLockError) Error() string {
	return fmt.Sprintf("the lock of runtime base %s %s: run kiln base lock %s", e.Recipe, e.Reason, e.Recipe)
}

// UnsupportedArchError reports an architecture a recipe is not made for.
type UnsupportedArchError struct {
	Recipe    string
	Arch      string
	Supported []string
}

func (e *UnsupportedArchError) Error() string {
	return fmt.Sprintf("runtime base %s is not made for %s (it is for %s)", e.Recipe, e.Arch, strings.Join(e.Supported, ", "))
}
