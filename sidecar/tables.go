package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/remocal/kubectl-remocal/pkg/wire"
	"github.com/remocal/kubectl-remocal/sidecar/redirect"
)

// The pod's redirect tables: this sidecar's, and those other sidecars of the pod left, live or
// dead.

// redirect sends port's new connections to the listener. Called with the pod's lock and mu
// held, the table open, and no other live sidecar redirecting the port (holderElsewhere): both
// tables would redirect it, and each connection would go to one of the two sessions, as the
// tables' order happens to say, without either user knowing.
func (in *incoming) redirect(port uint16) error {
	to := uint16(in.ln.Addr().(*net.TCPAddr).Port)
	if port == to {
		return fmt.Errorf("port %d is where the sidecar takes redirected connections: %w", port, syscall.EADDRINUSE)
	}
	return in.table.Redirect(port, to)
}

// holderElsewhere finds the other live sidecar of the pod whose table redirects port, if any.
// Called with the pod's lock and mu held.
func (in *incoming) holderElsewhere(ctx context.Context, port uint16) (*holder, error) {
	names, err := redirect.Tables()
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if in.table != nil && name == in.table.Name() {
			continue
		}
		info, err := redirect.Inspect(name)
		if err != nil {
			if !sidecarListens(name) {
				continue // a dead sidecar's: whatever it holds, it redirects to nobody
			}
			// Unread, a live sidecar's ports might hold this one: both would redirect it.
			return nil, fmt.Errorf("read the redirect table %s of another sidecar of this pod: %w", name, err)
		}
		if !slices.Contains(info.Ports, port) || !redirecting(name, info) {
			continue
		}
		h := &holder{sidecar: info.Holder, table: name}
		if h.sidecar == "" {
			h.sidecar = name
		}
		in.log.DebugContext(ctx, "port redirected by another sidecar", "port", port, "sidecar", h.sidecar, "table", name)
		return h, nil
	}
	return nil, nil
}

// renew keeps table's lease, and so its redirects, in force until ctx ends: if this process
// stops, they lapse by themselves.
func (in *incoming) renew(ctx context.Context, table *redirect.Table) {
	tick := time.NewTicker(redirect.RenewEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := table.Renew(); err != nil {
			// The next renewal may succeed before the lease lapses and the ports go back to the app.
			in.log.WarnContext(ctx, "renew the redirects' lease", "err", err)
		}
	}
}

// removeDeadTables deletes the tables of sidecars that no longer run.
func removeDeadTables(ctx context.Context, log *slog.Logger) {
	if _, err := redirectTables(ctx, log, true); err != nil {
		log.WarnContext(ctx, "list redirect tables", "err", err)
	}
}

// redirectTables lists the redirect tables in the pod's network namespace, and deletes those
// of dead sidecars when clean is set: a table's name carries the port its sidecar listens on,
// and a port nobody listens on is a dead sidecar's. A table whose lease lapsed while its
// sidecar still listens (a sidecar starved of CPU for the lease's term) is not deleted: its
// rules match nothing until its sidecar renews the lease, which gives the sidecar its ports
// back, where a deleted table would lose them without a word to its user.
func redirectTables(ctx context.Context, log *slog.Logger, clean bool) ([]wire.RedirectTable, error) {
	names, err := redirect.Tables()
	if err != nil {
		return nil, err
	}
	var tables []wire.RedirectTable
	for _, name := range names {
		info, err := redirect.Inspect(name)
		if err != nil {
			log.WarnContext(ctx, "read a redirect table", "table", name, "err", err)
		}
		t := wire.RedirectTable{Name: name, Ports: info.Ports, Live: sidecarListens(name)}
		if clean && !t.Live {
			if err := redirect.DeleteTable(name); err != nil {
				log.WarnContext(ctx, "remove a dead sidecar's redirect table", "table", name, "err", err)
			} else {
				t.Removed = true
				log.InfoContext(ctx, "removed a dead sidecar's redirect table", "table", name, "ports", info.Ports)
			}
		}
		tables = append(tables, t)
	}
	return tables, nil
}

// redirecting reports whether a table's redirects are in force: its lease holds (its sidecar
// renews it), and its listener takes connections (a sidecar whose worker just died still holds
// the lease for a few seconds).
func redirecting(name string, info redirect.Info) bool {
	return !info.Lapsed && sidecarListens(name)
}

// sidecarListens reports whether the sidecar that owns a table may run: whether its listener
// port, in the table's name, takes connections (it closes them at once, since they were not
// redirected, but that is after it took them). Only a refusal says it is dead.
func sidecarListens(table string) bool {
	port := strings.TrimPrefix(table, redirect.TablePrefix)
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), 500*time.Millisecond)
	if err == nil {
		c.Close()
		return true
	}
	return !errors.Is(err, syscall.ECONNREFUSED)
}

// start opens the listener and the table, after removing the tables of dead sidecars, and
// renews the table's lease until the table goes. Called with mu held.
func (in *incoming) start(ctx context.Context) error {
	removeDeadTables(ctx, in.log)
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{})
	if err != nil {
		return fmt.Errorf("listen for redirected connections: %w", err)
	}
	// The table is named after the listener's port: a table whose port nobody listens on
	// belongs to a dead sidecar (removeDeadTables).
	table, err := redirect.Open(strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), in.holder)
	if err != nil {
		ln.Close()
		return err
	}
	in.ln, in.table = ln, table
	renewing, stop := context.WithCancel(context.WithoutCancel(ctx))
	in.stopRenewing = stop
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		in.renew(renewing, table)
	}()
	in.fromClient = true
	if err := errors.Join(table.MarkAnswers(), redirect.DeliverMarkedLocally(-1)); err != nil {
		in.fromClient = false
		in.log.WarnContext(ctx, "the app will see the pod's own address for the connections the sidecar passes on", "err", err)
	}
	// The redirected connections outlive the subscription that opened the listener: each ends
	// with its client or its app, not with that request.
	serving := context.WithoutCancel(ctx)
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		in.accept(serving, ln)
	}()
	return nil
}

// stopIfIdle deletes the table and the listener when no port is redirected. Called with mu
// held.
func (in *incoming) stopIfIdle() {
	if in.table == nil {
		return
	}
	for _, subs := range in.subs {
		if subs[0].routedHere() {
			return
		}
	}
	in.stopRenewing()
	if err := in.table.Close(); err != nil {
		in.log.Error("delete redirect table", "err", err)
	}
	in.ln.Close()
	in.table, in.ln, in.stopRenewing = nil, nil, nil
}
