package sidecarclient

import (
	"context"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// The listings of what holds the pod's ports and who uses the sidecar, for ls and clean.

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

// Sessions asks the sidecar for the sessions it serves: their users' labels, their starts and
// the pod ports each holds. An older sidecar, without them, returns a *FeatureError.
func (s *Session) Sessions(ctx context.Context) (_ []wire.SessionInfo, err error) {
	if err := s.need(wire.FeatureSessions, "list its sessions"); err != nil {
		return nil, err
	}
	defer s.takeControl(ctx)(&err)
	reply, err := roundTrip[wire.SessionsReply](s, "list sessions", "cannot list its sessions", wire.Sessions{})
	return reply.Sessions, err
}
