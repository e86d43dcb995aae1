package provisioner

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Provisioner decides what a valid sign-in means for an organization's
// plan: an existing member gets in, an invited person becomes a member,
// and anyone else is added just in time when the plan allows it and a
// seat is free.
type Provisioner struct {
	// Store keeps the members and seats.
	Store Store

	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Outcome says what SignIn did.
type Outcome string

// The outcomes of a successful SignIn.
const (
	OutcomeMember      Outcome = "member"      // already a member
	OutcomeInvited     Outcome = "invited"     // an invitation was accepted
	OutcomeProvisioned Outcome = "provisioned" // added just in time
)

func (p *Provisioner) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// SignIn returns the member for a person whose identity provider vouched
// for email (normalised) and name. Errors: ErrNotInvited, ErrOutOfSeats,
// or a store error. Existing members always get in, even when the
// organization holds more members than seats.
func (p *Provisioner) SignIn(ctx context.Context, org Org,
	email, name string) (Member, Outcome, error) {
	now := p.now()

	m, err := p.Store.Member(ctx, org.ID, email)
	switch {
	case err == nil:
		return p.recordSignIn(ctx, m, now, OutcomeMember)
	case !errors.Is(err, ErrNotFound):
		return Member{}, "", fmt.Errorf("looking up member: %w", err)
	}

	// an invitation holds a seat already, whatever the plan
	source, outcome := SourceJIT, OutcomeProvisioned
	_, err = p.Store.Invitation(ctx, org.ID, email)
	switch {
	case err == nil:
		source, outcome = SourceInvitation, OutcomeInvited
	case !errors.Is(err, ErrNotFound):
		return Member{}, "", fmt.Errorf("looking up invitation: %w", err)
	case !org.JIT || !org.Plan.OffersJIT():
		return Member{}, "", ErrNotInvited
	}

	m, err = p.Store.AddMember(ctx, Member{
		OrgID:        org.ID,
		Email:        email,
		Name:         name,
		Source:       source,
		CreatedAt:    now,
		LastSignInAt: now,
	}, org.Seats)
	if err != nil {
		if errors.Is(err, ErrOutOfSeats) {
			return Member{}, "", ErrOutOfSeats
		}
		return Member{}, "", fmt.Errorf("provisioning member: %w", err)
	}
	return m, outcome, nil
}

func (p *Provisioner) recordSignIn(ctx context.Context, m Member,
	now time.Time, o Outcome) (Member, Outcome, error) {
	if err := p.Store.RecordSignIn(ctx, m.ID, now); err != nil {
		return Member{}, "", fmt.Errorf("recording sign-in: %w", err)
	}
	m.LastSignInAt = now
	return m, o, nil
}

// Invite records a pending invitation for email in org, taking a seat.
func (p *Provisioner) Invite(ctx context.Context, org Org,
	email string) error {
	inv := Invitation{OrgID: org.ID, Email: email, CreatedAt: p.now()}
	if err := p.Store.Invite(ctx, inv, org.Seats); err != nil {
		return fmt.Errorf("inviting %s to %s: %w", email, org.ID, err)
	}
	return nil
}
