package redirect

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// A table's redirects hold only while its sidecar lives. Every rule matches only while the
// table's set "lease" holds its one element, which lapses LeaseTerm after it was last added,
// and the sidecar adds it again every RenewEvery. When the sidecar dies with its guard (the
// container killed, the whole container OOM-killed), nobody deletes the table, but the lease
// lapses, the rules stop matching, and the pod's ports reach the app again: within LeaseTerm.
const (
	LeaseTerm  = 8 * time.Second
	RenewEvery = 2 * time.Second
)

// leaseSet is the name of the set that holds the lease.
const leaseSet = "lease"

// leaseKey is the set's one element. The rules look it up from a constant register, so nothing
// of the packet plays a part.
var leaseKey = []byte{1, 0, 0, 0}

// addLease adds the lease's set, with its element, to c's transaction.
func (t *Table) addLease(c *nftables.Conn) error {
	t.lease = &nftables.Set{
		Table:      t.table,
		Name:       leaseSet,
		KeyType:    nftables.TypeInteger,
		HasTimeout: true,
	}
	if err := c.AddSet(t.lease, []nftables.SetElement{{Key: leaseKey, Timeout: t.term}}); err != nil {
		return fmt.Errorf("add the lease: %w", err)
	}
	return nil
}

// leaseHeld is the part of a rule that matches only while the lease holds.
func (t *Table) leaseHeld() []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: leaseKey},
		&expr.Lookup{SourceRegister: 1, SetName: t.lease.Name, SetID: t.lease.ID},
	}
}

// Renew holds the lease for LeaseTerm from now, and restores the redirects if it had lapsed.
// A closed table's lease is not renewed.
func (t *Table) Renew() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	err := t.apply(func(c *nftables.Conn) error {
		// The element is replaced rather than added again: a kernel before 6.10 keeps an
		// existing element's timeout when it is added again. Flush and add are one
		// transaction, so the rules never see the set empty.
		c.FlushSet(t.lease)
		return c.SetAddElements(t.lease, []nftables.SetElement{{Key: leaseKey, Timeout: t.term}})
	})
	if err != nil {
		return fmt.Errorf("renew the lease of %s: %w", t.table.Name, explain(err))
	}
	return nil
}

// lapsed tells whether table's lease ran out. A table without one (made before leases) has
// not.
func lapsed(conn *nftables.Conn, table *nftables.Table) (bool, error) {
	set, err := conn.GetSetByName(table, leaseSet)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	elems, err := conn.GetSetElements(set)
	if err != nil {
		return false, err
	}
	for _, e := range elems {
		// Older kernels list an expired element, with no time left, until they collect it.
		if e.Expires > 0 {
			return false, nil
		}
	}
	return true, nil
}
