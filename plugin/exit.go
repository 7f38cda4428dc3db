package plugin

import "fmt"

// ExitError ends the plugin with Code and no message of its own. It is how the exit status of the
// user's program becomes the plugin's exit status: that program has already said what went wrong.
//
// Return it as a value, not a pointer; cmd/kubectl-remocal matches it with errors.As.
type ExitError struct {
	Code int
}

func (e ExitError) Error() string {
	return fmt.Sprintf("exit status %d", e.Code)
}
