package sidecarclient

import (
	"context"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// The listings of what holds the pod's ports, for ls and clean.

// Redirects lists the redirect tables in the pod, deleting those of dead sidecars when clean
// is set. A sidecar that cannot list them returns a *RefusedError.
func (s *Session) Redirects(ctx context.Context, clean bool) (_ []wire.RedirectTable, err error) {
	if err := s.need(wire.FeatureRedirects, "list redirects"); err != nil {
		return nil, err
	}
	defer s.takeControl(ctx)(&err)
	reply, err := roundTrip[wire.RedirectsReply](s, "list redirects", "cannot list the pod's redirects", wire.Redirects{Clean: clean})
	return reply.Tables, err
}

// Subscriptions asks the sidecar for the pod ports its sessions hold, this one's and the
// others'.
func (s *Session) Subscriptions(ctx context.Context) (_ []wire.SubscriptionInfo, err error) {
	if err := s.need(wire.FeatureSubscriptions, "list its subscriptions"); err != nil {
		return nil, err
	}
	defer s.takeControl(ctx)(&err)
	reply, err := roundTrip[wire.SubscriptionsReply](s, "list subscriptions", "cannot list its subscriptions", wire.Subscriptions{})
	return reply.Subscriptions, err
}
