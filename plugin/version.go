package plugin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimachineryversion "k8s.io/apimachinery/pkg/version"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/discovery"

	"github.com/remocal/kubectl-remocal/pkg/version"
)

const (
	versionLong = `Print the version of the plugin and, unless --client is given, the version of the
cluster of the current context.`

	versionExample = `  # Print the plugin's version and the cluster's version
  kubectl remocal version

  # Print only the plugin's version
  kubectl remocal version --client

  # Print both versions as JSON
  kubectl remocal version -o json`

	// defaultVersionTimeout bounds the /version request when --request-timeout is not set, so an
	// unreachable cluster is reported within seconds rather than after the kernel's connect timeout.
	defaultVersionTimeout = 5 * time.Second
)

// versionOutput is what -o json and -o yaml print; the field names match kubectl version's.
type versionOutput struct {
	ClientVersion version.Info              `json:"clientVersion"`
	ServerVersion *apimachineryversion.Info `json:"serverVersion,omitempty"`
}

// VersionOptions holds the state of "kubectl remocal version".
type VersionOptions struct {
	ClientOnly bool
	Output     string
	// Timeout applies to the server request when --request-timeout is not set (or is 0, which
	// kubectl reads as "no timeout"; version never waits forever).
	Timeout time.Duration

	args []string
	// server is the API server's address, for error messages.
	server          string
	discoveryClient discovery.ServerVersionInterfaceWithContext

	genericiooptions.IOStreams
}

// NewVersionOptions returns the options with their defaults.
func NewVersionOptions(streams genericiooptions.IOStreams) *VersionOptions {
	return &VersionOptions{
		Timeout:   defaultVersionTimeout,
		IOStreams: streams,
	}
}

// NewCmdVersion returns "kubectl remocal version".
func NewCmdVersion(restClientGetter genericclioptions.RESTClientGetter, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewVersionOptions(streams)
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the plugin and cluster versions",
		Long:    versionLong,
		Example: versionExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(restClientGetter, cmd, args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return usageError(cmd, err)
			}
			return o.Run(cmd.Context())
		},
	}
	o.AddFlags(cmd)
	return cmd
}

// AddFlags binds the options to the command's flags.
func (o *VersionOptions) AddFlags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.ClientOnly, "client", o.ClientOnly, "If true, print only the plugin's version (no cluster required).")
	cmd.Flags().StringVarP(&o.Output, "output", "o", o.Output, "Output format. One of: (json, yaml).")
}

// Complete builds the discovery client, unless only the client version is wanted: --client must
// work without any kubeconfig.
func (o *VersionOptions) Complete(restClientGetter genericclioptions.RESTClientGetter, cmd *cobra.Command, args []string) error {
	o.args = args
	if o.ClientOnly {
		return nil
	}
	config, err := restClientGetter.ToRESTConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	if config.Timeout == 0 {
		config.Timeout = o.Timeout
	}
	o.Timeout = config.Timeout
	o.server = config.Host
	client, err := discovery.NewDiscoveryClientForConfig(config)
	if err != nil {
		return fmt.Errorf("create discovery client for %s: %w", config.Host, err)
	}
	o.discoveryClient = client
	return nil
}

// Validate checks the options without any I/O.
func (o *VersionOptions) Validate() error {
	if len(o.args) != 0 {
		return fmt.Errorf("unexpected arguments: %q", o.args)
	}
	switch o.Output {
	case "", "json", "yaml":
		return nil
	default:
		return fmt.Errorf("--output must be 'json' or 'yaml', not %q", o.Output)
	}
}

// Run prints the versions. As kubectl version does, it prints the client version even when the
// cluster cannot be reached, and then reports why the server version is missing.
func (o *VersionOptions) Run(ctx context.Context) error {
	out := versionOutput{ClientVersion: version.Get()}
	var serverErr error
	if !o.ClientOnly && o.discoveryClient != nil {
		out.ServerVersion, serverErr = o.discoveryClient.ServerVersionWithContext(ctx)
		if serverErr != nil {
			serverErr = o.explainServerError(serverErr)
		}
	}
	if err := o.print(out); err != nil {
		return err
	}
	return serverErr
}

func (o *VersionOptions) print(out versionOutput) error {
	switch o.Output {
	case "":
		fmt.Fprintf(o.Out, "Client Version: %s\n", out.ClientVersion.Version)
		if out.ServerVersion != nil {
			fmt.Fprintf(o.Out, "Server Version: %s\n", out.ServerVersion.GitVersion)
		}
		return nil
	default:
		return printObject(o.Out, out, o.Output, "version")
	}
}

// serverError keeps the one line shown to the user apart from the client-go error, which stays
// reachable with errors.As/Is and is printed at -v=1.
type serverError struct {
	msg string
	err error
}

func (e *serverError) Error() string { return e.msg }
func (e *serverError) Unwrap() error { return e.err }

const clientOnlyHint = "(use --client to print only the plugin version)"

// explainServerError turns a failed /version request into one line that says whether the cluster
// was unreachable or answered with an error.
func (o *VersionOptions) explainServerError(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return &serverError{msg: describeServerError(err, o.server, o.Timeout) + " " + clientOnlyHint, err: err}
}

// describeServerError says in one line why a request to the API server at server failed:
// unreachable (no answer within timeout, refused, ...), an untrusted certificate, or an error
// status from the server.
func describeServerError(err error, server string, timeout time.Duration) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		detail := s.Message
		// The discovery client cannot decode a JSON Status body and says "unknown"; the HTTP code
		// tells the user more.
		if detail == "" || detail == "unknown" {
			detail = fmt.Sprintf("HTTP %d %s", s.Code, http.StatusText(int(s.Code)))
		}
		return fmt.Sprintf("the cluster at %s refused the version request: %s", server, detail)
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return fmt.Sprintf("unable to verify the certificate of the cluster at %s: %v", server, certErr.Err)
	}
	cause := err
	// url.Error repeats the request URL, which the message already names.
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		cause = urlErr.Err
		if urlErr.Timeout() {
			cause = fmt.Errorf("no answer within %s", timeout)
		}
	}
	return fmt.Sprintf("unable to reach the cluster at %s: %v", server, cause)
}
