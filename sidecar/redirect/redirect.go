// Package redirect owns a sidecar's nftables table in the pod's network namespace. The table
// redirects new TCP connections for subscribed ports to the sidecar's listener (steal and
// mirror), but only those addressed to the pod itself, and only while the sidecar renews the
// table's lease; the sidecar's own connections to the app never pass the prerouting hook, so
// they are not redirected back. Tables are named after their owner, so a new sidecar can list
// and remove the tables of dead ones, and their rules carry their holder's name, so it can tell
// people whose a port is.
//
// It speaks netlink through github.com/google/nftables: the sidecar image has no nft or
// iptables binary.
package redirect

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// TablePrefix starts the name of every table a sidecar owns.
const TablePrefix = "remocal_"

// chainName is the table's one chain, on the prerouting hook.
const chainName = "prerouting"

// Table is one sidecar's table, with a NAT chain on the prerouting hook.
type Table struct {
	opts   []nftables.ConnOption
	table  *nftables.Table
	chain  *nftables.Chain
	lease  *nftables.Set
	term   time.Duration // how long a renewal of the lease holds
	holder []byte        // the rules' comment (nft's user data), naming the sidecar

	mu     sync.Mutex
	rules  map[uint16]uint64 // subscribed port -> rule handle
	closed bool
}

// Open creates (or takes over) the table of owner, with its lease held for LeaseTerm. holder
// names the sidecar for people (its container name): other sidecars that find one of its ports
// taken quote it. opts select the network namespace (nftables.WithNetNSFd); none means the
// caller's.
func Open(owner, holder string, opts ...nftables.ConnOption) (*Table, error) {
	return open(owner, holder, LeaseTerm, opts...)
}

// open is Open with the lease's term chosen, for tests that watch it lapse.
func open(owner, holder string, term time.Duration, opts ...nftables.ConnOption) (*Table, error) {
	if owner == "" || strings.ContainsAny(owner, " \t\n") {
		return nil, fmt.Errorf("bad table owner %q", owner)
	}
	if holder == "" {
		holder = TablePrefix + owner
	}
	t := &Table{opts: opts, term: term, rules: map[uint16]uint64{}}
	t.holder = userdata.AppendString(nil, userdata.TypeComment, holderComment+holder)
	t.table = &nftables.Table{Name: TablePrefix + owner, Family: nftables.TableFamilyINet}
	err := t.apply(func(c *nftables.Conn) error {
		// Deleting first makes Open idempotent: a restarted sidecar with the same name starts
		// from an empty table, never from rules it no longer tracks.
		c.AddTable(t.table)
		c.DelTable(t.table)
		c.AddTable(t.table)
		t.chain = c.AddChain(&nftables.Chain{
			Name:     chainName,
			Table:    t.table,
			Type:     nftables.ChainTypeNAT,
			Hooknum:  nftables.ChainHookPrerouting,
			Priority: nftables.ChainPriorityNATDest,
		})
		return t.addLease(c)
	})
	if err != nil {
		return nil, fmt.Errorf("create nftables table %s: %w", t.table.Name, explain(err))
	}
	return t, nil
}

// Name is the table's name.
func (t *Table) Name() string { return t.table.Name }

// holderComment starts the comment of every redirect rule, before the holder's name.
const holderComment = "remocal sidecar "

// Redirect sends new TCP connections to port of the pod's own addresses on to instead, while
// the lease holds. A port is redirected at most once.
func (t *Table) Redirect(port, to uint16) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.rules[port]; ok {
		return fmt.Errorf("port %d is already redirected", port)
	}
	conn, err := nftables.New(t.opts...)
	if err != nil {
		return err
	}
	exprs := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
		// fib daddr type local: only connections to the pod itself. A pod that routes (or one
		// on the node's network) also sees packets for other hosts on its way, and those are
		// not ours to take.
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
	exprs = append(exprs, t.leaseHeld()...)
	exprs = append(exprs,
		&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(to)},
		&expr.Redir{RegisterProtoMin: 1},
	)
	conn.AddRule(&nftables.Rule{Table: t.table, Chain: t.chain, Exprs: exprs, UserData: t.holder})
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("redirect port %d: %w", port, explain(err))
	}
	handle, err := t.findRule(port)
	if err != nil {
		return err
	}
	t.rules[port] = handle
	return nil
}

// findRule reads back the handle the kernel gave the rule for port.
func (t *Table) findRule(port uint16) (uint64, error) {
	conn, err := nftables.New(t.opts...)
	if err != nil {
		return 0, err
	}
	rules, err := conn.GetRules(t.table, t.chain)
	if err != nil {
		return 0, err
	}
	for _, r := range rules {
		if p, ok := redirectedPort(r); ok && p == port {
			return r.Handle, nil
		}
	}
	return 0, fmt.Errorf("the rule for port %d is not in table %s", port, t.table.Name)
}

// redirectedPort is the destination port a rule of Redirect matches.
func redirectedPort(r *nftables.Rule) (uint16, bool) {
	for i, e := range r.Exprs {
		if p, ok := e.(*expr.Payload); ok && p.Base == expr.PayloadBaseTransportHeader && p.Offset == 2 && i+1 < len(r.Exprs) {
			if c, ok := r.Exprs[i+1].(*expr.Cmp); ok && len(c.Data) == 2 {
				return binaryutil.BigEndian.Uint16(c.Data), true
			}
		}
	}
	return 0, false
}

// Info is what a remocal table tells of its sidecar, whichever sidecar made it.
type Info struct {
	// Ports are the redirected ports.
	Ports []uint16
	// Holder names the sidecar (its container name, or its table's name when it had none);
	// empty for a table without rules, or made by a sidecar that did not write it.
	Holder string
	// Lapsed says the lease ran out: its sidecar stopped renewing it, so it is dead, and none
	// of its redirects applies any more. A table made before leases existed never lapses.
	Lapsed bool
}

// Inspect reads a remocal table.
func Inspect(name string, opts ...nftables.ConnOption) (Info, error) {
	conn, err := nftables.New(opts...)
	if err != nil {
		return Info{}, err
	}
	table := &nftables.Table{Name: name, Family: nftables.TableFamilyINet}
	rules, err := conn.GetRules(table, &nftables.Chain{Name: chainName, Table: table})
	if err != nil {
		return Info{}, fmt.Errorf("list the rules of %s: %w", name, explain(err))
	}
	var info Info
	for _, r := range rules {
		if p, ok := redirectedPort(r); ok {
			info.Ports = append(info.Ports, p)
		}
		if c, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok && strings.HasPrefix(c, holderComment) {
			info.Holder = strings.TrimPrefix(c, holderComment)
		}
	}
	if info.Lapsed, err = lapsed(conn, table); err != nil {
		return info, fmt.Errorf("read the lease of %s: %w", name, explain(err))
	}
	return info, nil
}

// Remove stops redirecting port. New connections reach the app again; redirected ones that
// are open stay with the sidecar.
func (t *Table) Remove(port uint16) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	handle, ok := t.rules[port]
	if !ok {
		return nil
	}
	err := t.apply(func(c *nftables.Conn) error {
		return c.DelRule(&nftables.Rule{Table: t.table, Chain: t.chain, Handle: handle})
	})
	if err != nil {
		return fmt.Errorf("stop redirecting port %d: %w", port, explain(err))
	}
	delete(t.rules, port)
	return nil
}

// Ports lists the redirected ports.
func (t *Table) Ports() []uint16 {
	t.mu.Lock()
	defer t.mu.Unlock()
	ports := make([]uint16, 0, len(t.rules))
	for p := range t.rules {
		ports = append(ports, p)
	}
	return ports
}

// Close deletes the table and every redirect in it.
func (t *Table) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rules = map[uint16]uint64{}
	t.closed = true
	return DeleteTable(t.table.Name, t.opts...)
}

// apply makes the changes of change in one transaction.
func (t *Table) apply(change func(c *nftables.Conn) error) error {
	conn, err := nftables.New(t.opts...)
	if err != nil {
		return err
	}
	if err := change(conn); err != nil {
		return err
	}
	return conn.Flush()
}

// Tables lists the remocal tables in the namespace: this sidecar's and those of others, live
// or dead.
func Tables(opts ...nftables.ConnOption) ([]string, error) {
	conn, err := nftables.New(opts...)
	if err != nil {
		return nil, err
	}
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list nftables tables: %w", explain(err))
	}
	var names []string
	for _, t := range tables {
		if strings.HasPrefix(t.Name, TablePrefix) {
			names = append(names, t.Name)
		}
	}
	return names, nil
}

// DeleteTable removes a remocal table; a table already gone is not an error.
func DeleteTable(name string, opts ...nftables.ConnOption) error {
	if !strings.HasPrefix(name, TablePrefix) {
		return fmt.Errorf("%s is not a remocal table", name)
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return err
	}
	conn.DelTable(&nftables.Table{Name: name, Family: nftables.TableFamilyINet})
	if err := conn.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete nftables table %s: %w", name, explain(err))
	}
	return nil
}

// explain adds what to do to the kernel's refusal for lack of NET_ADMIN.
func explain(err error) error {
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w (the sidecar needs the NET_ADMIN capability, which only a privileged Pod Security level allows)", err)
	}
	return err
}
