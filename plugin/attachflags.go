package plugin

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"

	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/pkg/version"
	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
	"github.com/remocal/kubectl-remocal/plugin/internal/configfile"
)

// attachFlags are the flags of every command that attaches to a pod through a sidecar (exec,
// port-forward, clean, doctor; ls takes --transport only), and its TARGET. Complete turns them
// into the attacher that does the work.
type attachFlags struct {
	configFlags *genericclioptions.ConfigFlags

	Container    string
	SidecarImage string
	StartTimeout time.Duration
	TTL          time.Duration
	MaxLifetime  time.Duration
	Transport    attach.Transport
	// BreakLinkEvery is a hidden test flag: break the port-forward connection at this period.
	BreakLinkEvery time.Duration
	// DirectIPFamily is a hidden test flag: dial the direct path on the pod's address of this
	// family only (IPv4 or IPv6).
	DirectIPFamily string
	// UserLabel is --user-label, of the commands whose sessions others see (exec,
	// port-forward, doctor): AddUserLabelFlag.
	UserLabel string

	// fileTarget is the configuration file's target: the TARGET when the command line names
	// none. Set by applyConfigFile.
	fileTarget string
	// targetRef is the TARGET (TYPE/NAME) the command acts on. Set by Complete.
	targetRef string
}

func newAttachFlags(configFlags *genericclioptions.ConfigFlags) attachFlags {
	return attachFlags{
		configFlags:  configFlags,
		SidecarImage: version.DefaultSidecarImage(),
		StartTimeout: 60 * time.Second,
		// The sidecar's own defaults, which the plugin always passes on.
		TTL:         sidecarapi.DefaultTTL,
		MaxLifetime: sidecarapi.DefaultMaxLifetime,
		Transport:   attach.TransportAuto,
	}
}

// transportUsage is the help of --transport.
const transportUsage = "auto (direct when the pod IP is reachable, else port-forward), direct, port-forward"

// AddFlags binds the flags.
func (f *attachFlags) AddFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVarP(&f.Container, "container", "c", f.Container, "container of the pod to act as (default: the kubectl.kubernetes.io/default-container annotation, else the first)")
	fs.StringVar(&f.SidecarImage, "sidecar-image", f.SidecarImage, "image of the sidecar added to the pod")
	fs.DurationVar(&f.StartTimeout, "start-timeout", f.StartTimeout, "how long to wait for the sidecar to run")
	fs.DurationVar(&f.TTL, "ttl", f.TTL, "a new sidecar exits after this long without a client")
	fs.DurationVar(&f.MaxLifetime, "max-lifetime", f.MaxLifetime, "a new sidecar ends its sessions and exits after this long, even with clients")
	fs.Var((*transportFlag)(&f.Transport), "transport", "how to reach the sidecar: "+transportUsage)
	fs.DurationVar(&f.BreakLinkEvery, "debug-break-link-every", 0, "break the port-forward connection at this period (tests the link's recovery)")
	_ = fs.MarkHidden("debug-break-link-every")
	fs.StringVar(&f.DirectIPFamily, "debug-direct-ip-family", "", "dial the direct path on the pod's IPv4 or IPv6 address only (tests either family's path)")
	_ = fs.MarkHidden("debug-direct-ip-family")
	cmd.ValidArgsFunction = completeTarget(f.configFlags)
	_ = cmd.RegisterFlagCompletionFunc("container", completeContainer(f.configFlags))
}

// AddUserLabelFlag binds --user-label, which the commands whose sessions others see take
// (those that only look, ls and clean, are not listed).
func (f *attachFlags) AddUserLabelFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.UserLabel, "user-label", f.UserLabel, userLabelUsage)
}

// Complete builds the attacher for target (TYPE/NAME; "" is the configuration file's target)
// and use, with clients from the kubeconfig flags.
func (f *attachFlags) Complete(target string, use attach.Use) (*attach.Attacher, error) {
	f.targetRef = target
	if target == "" {
		f.targetRef = f.fileTarget
	}
	namespace, _, err := f.configFlags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, err
	}
	restConfig, err := f.configFlags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, err
	}
	dir, err := userDir()
	if err != nil {
		return nil, fmt.Errorf("find a directory for the client key: %w", err)
	}
	keyPath, err := clientKeyPath(dir, f.configFlags)
	if err != nil {
		return nil, fmt.Errorf("find the client key: %w", err)
	}
	return attach.New(attach.Config{
		Getter:         f.configFlags,
		Namespace:      namespace,
		RESTConfig:     restConfig,
		Client:         client,
		KeyPath:        keyPath,
		Ref:            f.targetRef,
		Container:      f.Container,
		Image:          f.SidecarImage,
		StartTimeout:   f.StartTimeout,
		TTL:            f.TTL,
		MaxLifetime:    f.MaxLifetime,
		Transport:      f.Transport,
		BreakLinkEvery: f.BreakLinkEvery,
		DirectFamily:   corev1.IPFamily(f.DirectIPFamily),
		Use:            use,
		Label:          f.userLabel(),
	}), nil
}

// Validate checks the flags without I/O. --transport checks itself as it is set.
func (f *attachFlags) Validate() error {
	if f.targetRef == "" {
		return errors.New("a TARGET (TYPE/NAME) is required, on the command line or as \"target\" in " + configfile.FileName)
	}
	if f.StartTimeout <= 0 || f.TTL <= 0 || f.MaxLifetime <= 0 {
		return errors.New("--start-timeout, --ttl and --max-lifetime must be positive")
	}
	if f.SidecarImage == "" {
		return errors.New("--sidecar-image must not be empty")
	}
	switch corev1.IPFamily(f.DirectIPFamily) {
	case "", corev1.IPv4Protocol, corev1.IPv6Protocol:
	default:
		return fmt.Errorf("--debug-direct-ip-family must be %s or %s, not %q", corev1.IPv4Protocol, corev1.IPv6Protocol, f.DirectIPFamily)
	}
	return validateUserLabel(f.UserLabel)
}
