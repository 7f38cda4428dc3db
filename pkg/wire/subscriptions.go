package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// maxSubscriptions bounds a SubscriptionsReply: a port has one whole-port subscription or a few
// filtered steals, and a pod few ports.
const maxSubscriptions = 1024

// Subscriptions asks the sidecar for the pod ports its clients hold (control stream). The
// answer is a SubscriptionsReply, or an Error.
type Subscriptions struct{}

// Type implements Message.
func (Subscriptions) Type() Type { return TypeSubscriptions }

func (Subscriptions) check() error { return nil }

func (Subscriptions) appendPayload(b []byte) []byte { return b }

func parseSubscriptions([]byte) (Subscriptions, int, error) { return Subscriptions{}, 0, nil }

// SubscriptionInfo is one client's hold on a pod port, as Subscribe asked for it.
type SubscriptionInfo struct {
	Port   uint16
	Mode   string // ModeSteal or ModeMirror
	Header string // the HTTP filter, when the steal takes only some requests
	Path   string
	// Client is the holding connection's address as the sidecar sees it.
	Client string
	// Mine: the connection that asked holds it.
	Mine bool
	// Capture: a mirror by packet capture; otherwise the port is redirected (nftables).
	Capture bool
}

// SubscriptionsReply lists the sidecar's subscriptions, ordered by port, then by the order in
// which they were taken.
type SubscriptionsReply struct {
	Subscriptions []SubscriptionInfo
}

// Type implements Message.
func (SubscriptionsReply) Type() Type { return TypeSubscriptionsReply }

func (r SubscriptionsReply) check() error {
	if len(r.Subscriptions) > maxSubscriptions {
		return fmt.Errorf("%w: subscriptions: %d, max %d", ErrTooLarge, len(r.Subscriptions), maxSubscriptions)
	}
	for _, s := range r.Subscriptions {
		if err := errors.Join(
			checkString(s.Mode, maxModeLen, "subscription mode"),
			checkString(s.Header, MaxFilterLen, "subscription header filter"),
			checkString(s.Path, MaxFilterLen, "subscription path filter"),
			checkString(s.Client, maxAddressLen, "subscription client")); err != nil {
			return err
		}
	}
	return nil
}

func (r SubscriptionsReply) appendPayload(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(r.Subscriptions)))
	for _, s := range r.Subscriptions {
		b = binary.BigEndian.AppendUint16(b, s.Port)
		b = appendString(b, s.Mode)
		b = appendString(b, s.Header)
		b = appendString(b, s.Path)
		b = appendString(b, s.Client)
		b = appendBool(b, s.Mine)
		b = appendBool(b, s.Capture)
	}
	return b
}

// subscriptionMinSize is the smallest encoding of a SubscriptionInfo: the port, four empty
// strings and two flags.
const subscriptionMinSize = 2 + 4 + 2

// parseSubscriptionsReply checks the count against its bound and the bytes left before
// allocating, as parseStrings does.
func parseSubscriptionsReply(b []byte) (SubscriptionsReply, int, error) {
	count, n, err := parseCount(b, maxSubscriptions, subscriptionMinSize, "subscriptions")
	if err != nil {
		return SubscriptionsReply{}, 0, err
	}
	var r SubscriptionsReply
	for range count {
		var s SubscriptionInfo
		port, m, err := parseUint16(b[n:], "subscription port")
		if err != nil {
			return SubscriptionsReply{}, 0, err
		}
		s.Port, n = port, n+m
		for _, field := range []struct {
			to   *string
			max  int
			what string
		}{
			{&s.Mode, maxModeLen, "subscription mode"},
			{&s.Header, MaxFilterLen, "subscription header filter"},
			{&s.Path, MaxFilterLen, "subscription path filter"},
			{&s.Client, maxAddressLen, "subscription client"},
		} {
			v, m, err := parseString(b[n:], field.max, field.what)
			if err != nil {
				return SubscriptionsReply{}, 0, err
			}
			*field.to, n = v, n+m
		}
		for _, flag := range []struct {
			to   *bool
			what string
		}{{&s.Mine, "subscription mine"}, {&s.Capture, "subscription capture"}} {
			v, m, err := parseBool(b[n:], flag.what)
			if err != nil {
				return SubscriptionsReply{}, 0, err
			}
			*flag.to, n = v, n+m
		}
		r.Subscriptions = append(r.Subscriptions, s)
	}
	return r, n, nil
}
