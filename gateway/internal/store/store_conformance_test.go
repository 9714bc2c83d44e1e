package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
)

// TestStoreConformance runs one suite against every Store backend.
func TestStoreConformance(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		store, err := Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		runStoreSuite(t, store)

		t.Run("reopening finds the data and nothing to migrate", func(t *testing.T) {
			again, err := Open(t.Context(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			want, err := store.CountOrgs(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got, err := again.CountOrgs(t.Context()); err != nil || got != want {
				t.Errorf("CountOrgs after reopening = %d, %v; want %d", got, err, want)
			}
		})
	})
}

// base has microseconds, the precision the store keeps.
var base = time.Date(2026, 11, 21, 12, 0, 0, 123456000, time.UTC)

func newID(t testing.TB) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

func hashOf(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// mustUser creates an invited user (email only) with a unique email.
func mustUser(t testing.TB, s Store, label string) User {
	t.Helper()
	id := newID(t)
	u := User{ID: id, Email: label + "-" + id + "@example.com", Created: base}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser %s: %v", label, err)
	}
	return u
}

func mustOrg(t testing.TB, s Store, name string, owner User) Org {
	t.Helper()
	org := Org{ID: newID(t), Name: name, DisplayName: strings.ToUpper(name), Created: base, Updated: base}
	if err := s.CreateOrg(t.Context(), org, owner.ID); err != nil {
		t.Fatalf("CreateOrg %s: %v", name, err)
	}
	return org
}

func mustAddMember(t testing.TB, s Store, org Org, u User, role identity.Role) {
	t.Helper()
	if err := s.AddMember(t.Context(), org.ID, u.ID, role, base); err != nil {
		t.Fatalf("AddMember %s to %s: %v", u.Email, org.Name, err)
	}
}

func mustToken(t testing.TB, s Store, org Org, name string, creator User) Token {
	t.Helper()
	id := newID(t)
	tok := Token{
		ID: id, OrgID: org.ID, Name: name, Role: identity.RoleDeployer,
		Hash: hashOf("slp_" + id), Creator: creator.ID, Created: base,
	}
	if err := s.CreateToken(t.Context(), tok); err != nil {
		t.Fatalf("CreateToken %s in %s: %v", name, org.Name, err)
	}
	return tok
}

func mustRole(t testing.TB, s Store, org Org, u User, want identity.Role) {
	t.Helper()
	m, err := s.GetMember(t.Context(), org.ID, u.ID)
	if err != nil {
		t.Fatalf("GetMember %s in %s: %v", u.Email, org.Name, err)
	}
	if m.Role != want {
		t.Fatalf("role of %s in %s = %s, want %s", u.Email, org.Name, m.Role, want)
	}
}

func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s error = %v, want %v", what, err, want)
	}
}

// pages walks a keyset-paginated list with page size size and returns the
// keys of every item, in order.
func pages[T any](t testing.TB, size int, list func(after string, limit int) ([]T, error), key func(T) string) []string {
	t.Helper()
	var keys []string
	after := ""
	for range 100 {
		page, err := list(after, size)
		if err != nil {
			t.Fatalf("list after %q: %v", after, err)
		}
		if len(page) > size {
			t.Fatalf("page of %d items, limit %d", len(page), size)
		}
		for _, item := range page {
			keys = append(keys, key(item))
		}
		if len(page) < size {
			return keys
		}
		after = key(page[len(page)-1])
	}
	t.Fatal("pagination did not end")
	return nil
}

func runStoreSuite(t *testing.T, s Store) {
	t.Run("a new store is empty and answers", func(t *testing.T) {
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping: %v", err)
		}
		if n, err := s.CountOrgs(t.Context()); err != nil || n != 0 {
			t.Errorf("CountOrgs = %d, %v; want 0", n, err)
		}
	})
	t.Run("users", func(t *testing.T) { testUsers(t, s) })
	t.Run("orgs", func(t *testing.T) { testOrgs(t, s) })
	t.Run("members", func(t *testing.T) { testMembers(t, s) })
	t.Run("last owner", func(t *testing.T) { testLastOwner(t, s) })
	t.Run("last owner under concurrent changes", func(t *testing.T) { testLastOwnerConcurrent(t, s) })
	t.Run("list user orgs", func(t *testing.T) { testListUserOrgs(t, s) })
	t.Run("list members", func(t *testing.T) { testListMembers(t, s) })
	t.Run("tokens", func(t *testing.T) { testTokens(t, s) })
	t.Run("revoke and touch tokens", func(t *testing.T) { testRevokeTouch(t, s) })
	t.Run("audit", func(t *testing.T) { testAudit(t, s) })
	t.Run("delete org", func(t *testing.T) { testDeleteOrg(t, s) })
	t.Run("list limits", func(t *testing.T) { testLimits(t, s) })
}

func testUsers(t *testing.T, s Store) {
	ctx := t.Context()
	paris := time.FixedZone("CET", 3600)
	alice := User{ID: newID(t), Subject: "oidc|alice", Email: "alice@example.com", Created: base.In(paris).Add(789 * time.Nanosecond)}
	if err := s.CreateUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	stored := alice
	stored.Created = base // in UTC, to the microsecond
	for name, get := range map[string]func() (User, error){
		"GetUser":          func() (User, error) { return s.GetUser(ctx, alice.ID) },
		"GetUserBySubject": func() (User, error) { return s.GetUserBySubject(ctx, "oidc|alice") },
		"GetUserByEmail":   func() (User, error) { return s.GetUserByEmail(ctx, "alice@example.com") },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(stored, got); diff != "" {
			t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
		}
		if got.Created.Location() != time.UTC || !got.Created.Equal(base) {
			t.Errorf("%s: Created = %v, want %v", name, got.Created, base)
		}
	}

	// Unknown subjects and emails are NULL: any number of users may lack them.
	for _, u := range []User{
		{ID: newID(t), Email: "invited1@example.com", Created: base},
		{ID: newID(t), Email: "invited2@example.com", Created: base},
		{ID: newID(t), Subject: "oidc|no-email-1", Created: base},
		{ID: newID(t), Subject: "oidc|no-email-2", Created: base},
		{ID: newID(t), Created: base},
		{ID: newID(t), Created: base},
	} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Errorf("CreateUser %+v: %v", u, err)
		}
	}

	for _, tc := range []struct {
		name string
		u    User
	}{
		{name: "same id", u: User{ID: alice.ID, Subject: "oidc|other", Email: "other@example.com", Created: base}},
		{name: "same subject", u: User{ID: newID(t), Subject: "oidc|alice", Created: base}},
		{name: "same email", u: User{ID: newID(t), Email: "alice@example.com", Created: base}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, "CreateUser", s.CreateUser(ctx, tc.u), ErrExists)
		})
	}

	t.Run("lookups that match nobody", func(t *testing.T) {
		_, err := s.GetUser(ctx, newID(t))
		wantErr(t, "GetUser(unknown)", err, ErrNotFound)
		_, err = s.GetUserBySubject(ctx, "")
		wantErr(t, `GetUserBySubject("")`, err, ErrNotFound)
		_, err = s.GetUserByEmail(ctx, "")
		wantErr(t, `GetUserByEmail("")`, err, ErrNotFound)
		_, err = s.GetUserByEmail(ctx, "nobody@example.com")
		wantErr(t, "GetUserByEmail(unknown)", err, ErrNotFound)
	})

	t.Run("an invited user binds to its subject once", func(t *testing.T) {
		bob := mustUser(t, s, "bob")
		if err := s.SetUserSubject(ctx, bob.ID, "oidc|bob"); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetUserBySubject(ctx, "oidc|bob")
		if err != nil {
			t.Fatal(err)
		}
		want := bob
		want.Subject = "oidc|bob"
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("bound user mismatch (-want +got):\n%s", diff)
		}
		if err := s.SetUserSubject(ctx, bob.ID, "oidc|bob"); err != nil {
			t.Errorf("binding the same subject again: %v", err)
		}
		wantErr(t, "rebinding to another subject", s.SetUserSubject(ctx, bob.ID, "oidc|mallory"), ErrExists)
		if got, err := s.GetUser(ctx, bob.ID); err != nil || got.Subject != "oidc|bob" {
			t.Errorf("after refused rebinding: %+v, %v; want subject oidc|bob", got, err)
		}

		carol := mustUser(t, s, "carol")
		wantErr(t, "binding a taken subject", s.SetUserSubject(ctx, carol.ID, "oidc|bob"), ErrExists)
		if got, err := s.GetUser(ctx, carol.ID); err != nil || got.Subject != "" {
			t.Errorf("after refused binding: %+v, %v; want no subject", got, err)
		}
		wantErr(t, "binding an unknown user", s.SetUserSubject(ctx, newID(t), "oidc|ghost"), ErrNotFound)
		if err := s.SetUserSubject(ctx, carol.ID, ""); err == nil {
			t.Error("binding an empty subject succeeded")
		}
	})
}

func testOrgs(t *testing.T, s Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "org-alice")
	before, err := s.CountOrgs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acme := Org{ID: newID(t), Name: "acme", DisplayName: "Acme", Created: base, Updated: base.Add(time.Second).In(time.FixedZone("X", -7200))}
	if err := s.CreateOrg(ctx, acme, alice.ID); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetOrgByName(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(acme, got); diff != "" {
		t.Errorf("GetOrgByName mismatch (-want +got):\n%s", diff)
	}
	if got.Updated.Location() != time.UTC {
		t.Errorf("Updated in %v, want UTC", got.Updated.Location())
	}
	if byID, err := s.GetOrg(ctx, acme.ID); err != nil || !cmp.Equal(got, byID) {
		t.Errorf("GetOrg = %+v, %v; want %+v", byID, err, got)
	}
	if _, err := s.GetOrg(ctx, newID(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetOrg(unknown) error = %v, want ErrNotFound", err)
	}
	owner, err := s.GetMember(ctx, acme.ID, alice.ID)
	if err != nil {
		t.Fatalf("the creator is not a member: %v", err)
	}
	if diff := cmp.Diff(Member{User: alice, Role: identity.RoleOwner, Created: acme.Created}, owner); diff != "" {
		t.Errorf("creator's membership (-want +got):\n%s", diff)
	}
	if n, err := s.CountOrgs(ctx); err != nil || n != before+1 {
		t.Errorf("CountOrgs = %d, %v; want %d", n, err, before+1)
	}

	t.Run("a refused create writes nothing", func(t *testing.T) {
		bob := mustUser(t, s, "org-bob")
		wantErr(t, "CreateOrg(taken name)", s.CreateOrg(ctx, Org{ID: newID(t), Name: "acme", Created: base, Updated: base}, bob.ID), ErrExists)
		wantErr(t, "CreateOrg(taken id)", s.CreateOrg(ctx, Org{ID: acme.ID, Name: "acme-2", Created: base, Updated: base}, bob.ID), ErrExists)
		wantErr(t, "CreateOrg(unknown owner)", s.CreateOrg(ctx, Org{ID: newID(t), Name: "ownerless", Created: base, Updated: base}, newID(t)), ErrNotFound)
		if orgs, err := s.ListUserOrgs(ctx, bob.ID, "", 10); err != nil || len(orgs) != 0 {
			t.Errorf("refused creator's orgs = %v, %v; want none", orgs, err)
		}
		for _, name := range []string{"acme-2", "ownerless"} {
			_, err := s.GetOrgByName(ctx, name)
			wantErr(t, "GetOrgByName("+name+")", err, ErrNotFound)
		}
		if n, err := s.CountOrgs(ctx); err != nil || n != before+1 {
			t.Errorf("CountOrgs = %d, %v; want %d", n, err, before+1)
		}
	})

	t.Run("display name", func(t *testing.T) {
		now := base.Add(time.Hour)
		got, err := s.UpdateOrgDisplayName(ctx, acme.ID, "Acme Corporation", now)
		if err != nil {
			t.Fatal(err)
		}
		want := acme
		want.DisplayName, want.Updated = "Acme Corporation", now
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("UpdateOrgDisplayName mismatch (-want +got):\n%s", diff)
		}
		if reread, err := s.GetOrgByName(ctx, "acme"); err != nil || !cmp.Equal(want, reread) {
			t.Errorf("GetOrgByName after update = %+v, %v; want %+v", reread, err, want)
		}
		_, err = s.UpdateOrgDisplayName(ctx, newID(t), "Nobody", now)
		wantErr(t, "UpdateOrgDisplayName(unknown)", err, ErrNotFound)
	})

	_, err = s.GetOrgByName(ctx, "no-such-org")
	wantErr(t, "GetOrgByName(unknown)", err, ErrNotFound)
}

func testMembers(t *testing.T, s Store) {
	ctx := t.Context()
	owner, vic := mustUser(t, s, "mem-owner"), mustUser(t, s, "mem-vic")
	org := mustOrg(t, s, "members", owner)
	other := mustOrg(t, s, "members-other", mustUser(t, s, "mem-other-owner"))

	joined := base.Add(time.Minute)
	if err := s.AddMember(ctx, org.ID, vic.ID, identity.RoleViewer, joined); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetMember(ctx, org.ID, vic.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Member{User: vic, Role: identity.RoleViewer, Created: joined}, got); diff != "" {
		t.Errorf("GetMember mismatch (-want +got):\n%s", diff)
	}

	t.Run("add errors", func(t *testing.T) {
		wantErr(t, "AddMember(again)", s.AddMember(ctx, org.ID, vic.ID, identity.RoleAdmin, base), ErrExists)
		mustRole(t, s, org, vic, identity.RoleViewer)
		wantErr(t, "AddMember(unknown user)", s.AddMember(ctx, org.ID, newID(t), identity.RoleViewer, base), ErrNotFound)
		wantErr(t, "AddMember(unknown org)", s.AddMember(ctx, newID(t), vic.ID, identity.RoleViewer, base), ErrNotFound)
		stranger := mustUser(t, s, "mem-stranger")
		if err := s.AddMember(ctx, org.ID, stranger.ID, "root", base); err == nil {
			t.Error("AddMember with an unknown role succeeded")
		}
		_, err := s.GetMember(ctx, org.ID, stranger.ID)
		wantErr(t, "GetMember after refused add", err, ErrNotFound)
	})

	t.Run("another org's member is not found", func(t *testing.T) {
		_, err := s.GetMember(ctx, other.ID, vic.ID)
		wantErr(t, "GetMember(other org)", err, ErrNotFound)
		_, err = s.UpdateMemberRole(ctx, other.ID, vic.ID, identity.RoleAdmin)
		wantErr(t, "UpdateMemberRole(other org)", err, ErrNotFound)
		wantErr(t, "RemoveMember(other org)", s.RemoveMember(ctx, other.ID, vic.ID), ErrNotFound)
		_, err = s.UpdateMemberRole(ctx, other.ID, owner.ID, identity.RoleViewer)
		wantErr(t, "UpdateMemberRole(other org's owner)", err, ErrNotFound)
		wantErr(t, "RemoveMember(other org's owner)", s.RemoveMember(ctx, other.ID, owner.ID), ErrNotFound)
		mustRole(t, s, org, vic, identity.RoleViewer)
		mustRole(t, s, org, owner, identity.RoleOwner)
	})

	t.Run("update role", func(t *testing.T) {
		got, err := s.UpdateMemberRole(ctx, org.ID, vic.ID, identity.RoleDeployer)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Member{User: vic, Role: identity.RoleDeployer, Created: joined}, got); diff != "" {
			t.Errorf("UpdateMemberRole mismatch (-want +got):\n%s", diff)
		}
		mustRole(t, s, org, vic, identity.RoleDeployer)
		if _, err := s.UpdateMemberRole(ctx, org.ID, vic.ID, "root"); err == nil {
			t.Error("UpdateMemberRole to an unknown role succeeded")
		}
		mustRole(t, s, org, vic, identity.RoleDeployer)
		_, err = s.UpdateMemberRole(ctx, org.ID, newID(t), identity.RoleAdmin)
		wantErr(t, "UpdateMemberRole(unknown user)", err, ErrNotFound)
	})

	t.Run("remove", func(t *testing.T) {
		if err := s.RemoveMember(ctx, org.ID, vic.ID); err != nil {
			t.Fatal(err)
		}
		_, err := s.GetMember(ctx, org.ID, vic.ID)
		wantErr(t, "GetMember after remove", err, ErrNotFound)
		wantErr(t, "RemoveMember(again)", s.RemoveMember(ctx, org.ID, vic.ID), ErrNotFound)
		if orgs, err := s.ListUserOrgs(ctx, vic.ID, "", 10); err != nil || len(orgs) != 0 {
			t.Errorf("removed member's orgs = %v, %v; want none", orgs, err)
		}
		if _, err := s.GetUser(ctx, vic.ID); err != nil {
			t.Errorf("the user went with the membership: %v", err)
		}
	})
}

func testLastOwner(t *testing.T, s Store) {
	ctx := t.Context()
	ann, ben := mustUser(t, s, "lo-ann"), mustUser(t, s, "lo-ben")
	org := mustOrg(t, s, "last-owner", ann)

	_, err := s.UpdateMemberRole(ctx, org.ID, ann.ID, identity.RoleAdmin)
	wantErr(t, "demoting the only owner", err, ErrLastOwner)
	wantErr(t, "removing the only owner", s.RemoveMember(ctx, org.ID, ann.ID), ErrLastOwner)
	mustRole(t, s, org, ann, identity.RoleOwner)
	if _, err := s.UpdateMemberRole(ctx, org.ID, ann.ID, identity.RoleOwner); err != nil {
		t.Errorf("keeping the only owner an owner: %v", err)
	}

	mustAddMember(t, s, org, ben, identity.RoleAdmin)
	if err := s.RemoveMember(ctx, org.ID, ben.ID); err != nil {
		t.Errorf("removing a non-owner beside the only owner: %v", err)
	}
	mustAddMember(t, s, org, ben, identity.RoleOwner)
	if _, err := s.UpdateMemberRole(ctx, org.ID, ann.ID, identity.RoleViewer); err != nil {
		t.Fatalf("demoting one of two owners: %v", err)
	}
	_, err = s.UpdateMemberRole(ctx, org.ID, ben.ID, identity.RoleAdmin)
	wantErr(t, "demoting the remaining owner", err, ErrLastOwner)
	wantErr(t, "removing the remaining owner", s.RemoveMember(ctx, org.ID, ben.ID), ErrLastOwner)
	mustRole(t, s, org, ben, identity.RoleOwner)
	if _, err := s.UpdateMemberRole(ctx, org.ID, ann.ID, identity.RoleOwner); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveMember(ctx, org.ID, ben.ID); err != nil {
		t.Errorf("removing one of two owners: %v", err)
	}
	mustRole(t, s, org, ann, identity.RoleOwner)
}

// testLastOwnerConcurrent has the two owners of an org dropped at the same
// time: exactly one change may win.
func testLastOwnerConcurrent(t *testing.T, s Store) {
	ctx := t.Context()
	demote := func(orgID, userID string) error {
		_, err := s.UpdateMemberRole(ctx, orgID, userID, identity.RoleAdmin)
		return err
	}
	remove := func(orgID, userID string) error { return s.RemoveMember(ctx, orgID, userID) }
	tests := []struct {
		name string
		ops  [2]func(orgID, userID string) error
	}{
		{name: "demote both", ops: [2]func(string, string) error{demote, demote}},
		{name: "remove both", ops: [2]func(string, string) error{remove, remove}},
		{name: "demote one remove the other", ops: [2]func(string, string) error{demote, remove}},
	}
	const rounds = 10
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for round := range rounds {
				owners := [2]User{mustUser(t, s, "race-a"), mustUser(t, s, "race-b")}
				org := mustOrg(t, s, fmt.Sprintf("race-%s-%d", strings.ReplaceAll(tc.name, " ", "-"), round), owners[0])
				mustAddMember(t, s, org, owners[1], identity.RoleOwner)

				start := make(chan struct{})
				var errs [2]error
				var wg sync.WaitGroup
				for i := range owners {
					wg.Go(func() {
						<-start
						errs[i] = tc.ops[i](org.ID, owners[i].ID)
					})
				}
				close(start)
				wg.Wait()

				won := 0
				for i, err := range errs {
					switch {
					case err == nil:
						won++
					case !errors.Is(err, ErrLastOwner):
						t.Fatalf("round %d: change %d: %v", round, i, err)
					}
				}
				if won != 1 {
					t.Fatalf("round %d: %d changes succeeded (errors %v), want exactly 1", round, won, errs)
				}
				members, err := s.ListMembers(ctx, org.ID, "", 10)
				if err != nil {
					t.Fatal(err)
				}
				left := 0
				for _, m := range members {
					if m.Role == identity.RoleOwner {
						left++
					}
				}
				if left != 1 {
					t.Fatalf("round %d: %d owners left, want 1", round, left)
				}
			}
		})
	}
}

func testListUserOrgs(t *testing.T, s Store) {
	ctx := t.Context()
	mia, other := mustUser(t, s, "lu-mia"), mustUser(t, s, "lu-other")
	var want []string
	for i, name := range []string{"lu-g", "lu-c", "lu-a", "lu-f", "lu-b", "lu-e", "lu-d"} {
		if i%2 == 0 {
			mustOrg(t, s, name, mia)
		} else {
			mustAddMember(t, s, mustOrg(t, s, name, other), mia, identity.RoleViewer)
		}
		want = append(want, name)
	}
	slices.Sort(want)
	mustOrg(t, s, "lu-0-not-a-member", other)

	for _, size := range []int{1, 3, 7, 10} {
		got := pages(t, size, func(after string, limit int) ([]Org, error) {
			return s.ListUserOrgs(ctx, mia.ID, after, limit)
		}, func(o Org) string { return o.Name })
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("pages of %d (-want +got):\n%s", size, diff)
		}
	}
	orgs, err := s.ListUserOrgs(ctx, mia.ID, "lu-f", 10)
	if err != nil || len(orgs) != 1 || orgs[0].Name != "lu-g" || orgs[0].DisplayName != "LU-G" {
		t.Errorf("ListUserOrgs after lu-f = %+v, %v; want just lu-g", orgs, err)
	}
	if orgs, err := s.ListUserOrgs(ctx, newID(t), "", 10); err != nil || len(orgs) != 0 {
		t.Errorf("unknown user's orgs = %v, %v; want none", orgs, err)
	}
}

func testListMembers(t *testing.T, s Store) {
	ctx := t.Context()
	owner := mustUser(t, s, "lm-owner")
	org := mustOrg(t, s, "list-members", owner)
	other := mustOrg(t, s, "list-members-other", mustUser(t, s, "lm-other"))
	want := []string{owner.ID}
	for i := range 5 {
		u := mustUser(t, s, fmt.Sprintf("lm-%d", i))
		mustAddMember(t, s, org, u, identity.RoleDeployer)
		mustAddMember(t, s, other, u, identity.RoleViewer)
		want = append(want, u.ID)
	}
	mustAddMember(t, s, other, mustUser(t, s, "lm-other-only"), identity.RoleViewer)
	slices.Sort(want)

	for _, size := range []int{1, 3, 4, 6} {
		got := pages(t, size, func(after string, limit int) ([]Member, error) {
			return s.ListMembers(ctx, org.ID, after, limit)
		}, func(m Member) string { return m.User.ID })
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("pages of %d (-want +got):\n%s", size, diff)
		}
	}
	members, err := s.ListMembers(ctx, org.ID, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		wantRole := identity.RoleDeployer
		if m.User.ID == owner.ID {
			wantRole = identity.RoleOwner
		}
		if m.Role != wantRole || m.User.Email == "" || m.Created.IsZero() {
			t.Errorf("member %+v: want role %s, an email and a join time", m, wantRole)
		}
	}
	if got, err := s.ListMembers(ctx, newID(t), "", 10); err != nil || len(got) != 0 {
		t.Errorf("unknown org's members = %v, %v; want none", got, err)
	}
}

func testTokens(t *testing.T, s Store) {
	ctx := t.Context()
	owner := mustUser(t, s, "tk-owner")
	org, other := mustOrg(t, s, "tokens", owner), mustOrg(t, s, "tokens-other", owner)

	ci := Token{
		ID: newID(t), OrgID: org.ID, Name: "ci", Role: identity.RoleDeployer, Hash: hashOf("slp_ci"),
		Creator: owner.ID, Created: base, Expires: base.Add(24 * time.Hour),
	}
	if err := s.CreateToken(ctx, ci); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetToken(ctx, org.ID, ci.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ci, got); diff != "" {
		t.Errorf("GetToken mismatch (-want +got):\n%s", diff)
	}
	got, err = s.GetTokenByHash(ctx, hashOf("slp_ci"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ci, got); diff != "" {
		t.Errorf("GetTokenByHash mismatch (-want +got):\n%s", diff)
	}
	forever := mustToken(t, s, org, "forever", owner)
	if got, err := s.GetToken(ctx, org.ID, forever.ID); err != nil || !got.Expires.IsZero() || !got.LastUsed.IsZero() || !got.Revoked.IsZero() {
		t.Errorf("GetToken(forever) = %+v, %v; want no expiry, use or revocation", got, err)
	}

	t.Run("uniqueness", func(t *testing.T) {
		sameName := Token{ID: newID(t), OrgID: org.ID, Name: "ci", Role: identity.RoleViewer, Hash: hashOf("slp_ci2"), Creator: owner.ID, Created: base}
		wantErr(t, "CreateToken(same name)", s.CreateToken(ctx, sameName), ErrExists)
		sameName.OrgID = other.ID
		if err := s.CreateToken(ctx, sameName); err != nil {
			t.Errorf("CreateToken(same name, other org): %v", err)
		}
		sameHash := Token{ID: newID(t), OrgID: other.ID, Name: "copy", Role: identity.RoleViewer, Hash: hashOf("slp_ci"), Creator: owner.ID, Created: base}
		wantErr(t, "CreateToken(same hash)", s.CreateToken(ctx, sameHash), ErrExists)
		sameID := Token{ID: ci.ID, OrgID: org.ID, Name: "other", Role: identity.RoleViewer, Hash: hashOf("slp_x"), Creator: owner.ID, Created: base}
		wantErr(t, "CreateToken(same id)", s.CreateToken(ctx, sameID), ErrExists)
		if got, err := s.GetTokenByHash(ctx, hashOf("slp_ci")); err != nil || got.ID != ci.ID {
			t.Errorf("GetTokenByHash after refused creates = %+v, %v; want %s", got, err, ci.ID)
		}
	})

	t.Run("invalid", func(t *testing.T) {
		orphan := Token{ID: newID(t), OrgID: newID(t), Name: "orphan", Role: identity.RoleViewer, Hash: hashOf("slp_orphan"), Creator: owner.ID, Created: base}
		wantErr(t, "CreateToken(unknown org)", s.CreateToken(ctx, orphan), ErrNotFound)
		badRole := Token{ID: newID(t), OrgID: org.ID, Name: "bad-role", Role: "root", Hash: hashOf("slp_bad"), Creator: owner.ID, Created: base}
		if err := s.CreateToken(ctx, badRole); err == nil {
			t.Error("CreateToken with an unknown role succeeded")
		}
		noHash := Token{ID: newID(t), OrgID: org.ID, Name: "no-hash", Role: identity.RoleViewer, Creator: owner.ID, Created: base}
		if err := s.CreateToken(ctx, noHash); err == nil {
			t.Error("CreateToken without a hash succeeded")
		}
		_, err := s.GetTokenByHash(ctx, nil)
		wantErr(t, "GetTokenByHash(nil)", err, ErrNotFound)
		_, err = s.GetTokenByHash(ctx, hashOf("slp_unknown"))
		wantErr(t, "GetTokenByHash(unknown)", err, ErrNotFound)
	})

	t.Run("another org's token is not found", func(t *testing.T) {
		_, err := s.GetToken(ctx, other.ID, ci.ID)
		wantErr(t, "GetToken(other org)", err, ErrNotFound)
		wantErr(t, "RevokeToken(other org)", s.RevokeToken(ctx, other.ID, ci.ID, base), ErrNotFound)
		if got, err := s.GetToken(ctx, org.ID, ci.ID); err != nil || !got.Revoked.IsZero() {
			t.Errorf("token after other org's revoke = %+v, %v; want it not revoked", got, err)
		}
		_, err = s.GetToken(ctx, org.ID, newID(t))
		wantErr(t, "GetToken(unknown)", err, ErrNotFound)
	})

	t.Run("list", func(t *testing.T) {
		paged := mustOrg(t, s, "tokens-paged", owner)
		var want []string
		for i := range 7 {
			want = append(want, mustToken(t, s, paged, fmt.Sprintf("t%d", i), owner).ID)
		}
		mustToken(t, s, other, "elsewhere", owner)
		slices.Sort(want)
		for _, size := range []int{1, 3, 7} {
			got := pages(t, size, func(after string, limit int) ([]Token, error) {
				return s.ListTokens(ctx, paged.ID, after, limit)
			}, func(tok Token) string { return tok.ID })
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("pages of %d (-want +got):\n%s", size, diff)
			}
		}
		listed, err := s.ListTokens(ctx, org.ID, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(listed, func(tok Token) bool { return tok.ID == ci.ID })
		if i < 0 {
			t.Fatalf("ci missing from %+v", listed)
		}
		if diff := cmp.Diff(ci, listed[i]); diff != "" {
			t.Errorf("listed token mismatch (-want +got):\n%s", diff)
		}
	})
}

func testRevokeTouch(t *testing.T, s Store) {
	ctx := t.Context()
	owner := mustUser(t, s, "rt-owner")
	org := mustOrg(t, s, "revoke-touch", owner)

	t.Run("revoking keeps the first time", func(t *testing.T) {
		tok := mustToken(t, s, org, "revoked", owner)
		first := base.Add(time.Hour)
		for _, now := range []time.Time{first, first.Add(time.Hour)} {
			if err := s.RevokeToken(ctx, org.ID, tok.ID, now); err != nil {
				t.Fatalf("RevokeToken at %v: %v", now, err)
			}
			got, err := s.GetToken(ctx, org.ID, tok.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Revoked.Equal(first) {
				t.Errorf("Revoked = %v, want %v", got.Revoked, first)
			}
		}
		if got, err := s.GetTokenByHash(ctx, tok.Hash); err != nil || !got.Revoked.Equal(first) {
			t.Errorf("GetTokenByHash(revoked) = %+v, %v; want it, revoked at %v", got, err, first)
		}
		wantErr(t, "RevokeToken(unknown)", s.RevokeToken(ctx, org.ID, newID(t), first), ErrNotFound)
	})

	t.Run("touching is coarse", func(t *testing.T) {
		tok := mustToken(t, s, org, "touched", owner)
		first := base.Add(time.Hour)
		for _, step := range []struct {
			now  time.Time
			want time.Time
		}{
			{now: first, want: first},
			{now: first.Add(30 * time.Second), want: first},
			{now: first.Add(time.Minute), want: first},
			{now: first.Add(61 * time.Second), want: first.Add(61 * time.Second)},
			{now: base, want: first.Add(61 * time.Second)}, // never backwards
		} {
			if err := s.TouchToken(ctx, tok.ID, step.now); err != nil {
				t.Fatalf("TouchToken at %v: %v", step.now, err)
			}
			got, err := s.GetToken(ctx, org.ID, tok.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.LastUsed.Equal(step.want) {
				t.Errorf("after TouchToken at %v: LastUsed = %v, want %v", step.now, got.LastUsed, step.want)
			}
		}
		if err := s.TouchToken(ctx, newID(t), first); err != nil {
			t.Errorf("TouchToken(unknown) = %v, want nil", err)
		}
	})
}

func testAudit(t *testing.T, s Store) {
	ctx := t.Context()
	owner := mustUser(t, s, "au-owner")
	org, other := mustOrg(t, s, "audit", owner), mustOrg(t, s, "audit-other", owner)

	actors := []string{"user:ann", "user:ben", "token:ci"}
	actions := []string{"CreateImage", "DeleteImage"}
	var events []AuditEvent
	for i := range 11 {
		e := AuditEvent{
			ID: newID(t), OrgID: org.ID, Time: base.Add(time.Duration(i) * time.Minute),
			Actor: actors[i%len(actors)], Action: actions[i%len(actions)],
			Target: fmt.Sprintf("/api/v1/orgs/audit/images/%d", i), Result: 200 + i, RequestID: fmt.Sprintf("req-%d", i),
		}
		if e.Actor == "token:ci" {
			e.TokenID = "tok-ci"
		}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	stray := AuditEvent{ID: newID(t), OrgID: other.ID, Time: base.Add(time.Hour), Actor: "user:ann", Action: "CreateImage", Result: 200}
	if err := s.AppendAudit(ctx, stray); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(events, func(a, b AuditEvent) int { return strings.Compare(b.ID, a.ID) })

	newest, err := s.ListAudit(ctx, org.ID, AuditFilter{}, "", 1)
	if err != nil || len(newest) != 1 {
		t.Fatalf("ListAudit(limit 1) = %v, %v", newest, err)
	}
	if diff := cmp.Diff(events[0], newest[0]); diff != "" {
		t.Errorf("newest event mismatch (-want +got):\n%s", diff)
	}

	tests := []struct {
		name string
		f    AuditFilter
	}{
		{name: "everything"},
		{name: "actor", f: AuditFilter{Actor: "user:ben"}},
		{name: "action", f: AuditFilter{Action: "DeleteImage"}},
		{name: "since is inclusive", f: AuditFilter{Since: base.Add(4 * time.Minute)}},
		{name: "all three", f: AuditFilter{Actor: "user:ann", Action: "CreateImage", Since: base.Add(time.Minute)}},
		{name: "no match", f: AuditFilter{Actor: "user:nobody"}},
		{name: "since after everything", f: AuditFilter{Since: base.Add(time.Hour)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for _, e := range events {
				if (tc.f.Actor == "" || e.Actor == tc.f.Actor) && (tc.f.Action == "" || e.Action == tc.f.Action) && !e.Time.Before(tc.f.Since) {
					want = append(want, e.ID)
				}
			}
			for _, size := range []int{1, 2, 4, 20} {
				got := pages(t, size, func(after string, limit int) ([]AuditEvent, error) {
					return s.ListAudit(ctx, org.ID, tc.f, after, limit)
				}, func(e AuditEvent) string { return e.ID })
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("pages of %d (-want +got):\n%s", size, diff)
				}
			}
		})
	}

	t.Run("append errors", func(t *testing.T) {
		dup := events[3]
		dup.Actor = "user:mallory"
		wantErr(t, "AppendAudit(same id)", s.AppendAudit(ctx, dup), ErrExists)
		orphan := AuditEvent{ID: newID(t), OrgID: newID(t), Time: base, Actor: "user:ann", Action: "CreateImage", Result: 200}
		wantErr(t, "AppendAudit(unknown org)", s.AppendAudit(ctx, orphan), ErrNotFound)
		if got, err := s.ListAudit(ctx, org.ID, AuditFilter{Actor: "user:mallory"}, "", 10); err != nil || len(got) != 0 {
			t.Errorf("refused event listed: %v, %v", got, err)
		}
	})
}

func testDeleteOrg(t *testing.T, s Store) {
	ctx := t.Context()
	owner, member := mustUser(t, s, "del-owner"), mustUser(t, s, "del-member")
	doomed, kept := mustOrg(t, s, "doomed", owner), mustOrg(t, s, "kept", owner)
	for _, org := range []Org{doomed, kept} {
		mustAddMember(t, s, org, member, identity.RoleAdmin)
		if err := s.AppendAudit(ctx, AuditEvent{ID: newID(t), OrgID: org.ID, Time: base, Actor: "user:" + owner.ID, Action: "CreateToken", Result: 201}); err != nil {
			t.Fatal(err)
		}
	}
	doomedTok, keptTok := mustToken(t, s, doomed, "ci", owner), mustToken(t, s, kept, "ci", owner)

	if err := s.DeleteOrg(ctx, doomed.ID); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetOrgByName(ctx, "doomed")
	wantErr(t, "GetOrgByName(deleted)", err, ErrNotFound)
	_, err = s.GetMember(ctx, doomed.ID, member.ID)
	wantErr(t, "GetMember(deleted org)", err, ErrNotFound)
	_, err = s.GetToken(ctx, doomed.ID, doomedTok.ID)
	wantErr(t, "GetToken(deleted org)", err, ErrNotFound)
	_, err = s.GetTokenByHash(ctx, doomedTok.Hash)
	wantErr(t, "GetTokenByHash(deleted org)", err, ErrNotFound)
	if got, err := s.ListMembers(ctx, doomed.ID, "", 10); err != nil || len(got) != 0 {
		t.Errorf("deleted org's members = %v, %v; want none", got, err)
	}
	if got, err := s.ListTokens(ctx, doomed.ID, "", 10); err != nil || len(got) != 0 {
		t.Errorf("deleted org's tokens = %v, %v; want none", got, err)
	}
	if got, err := s.ListAudit(ctx, doomed.ID, AuditFilter{}, "", 10); err != nil || len(got) != 0 {
		t.Errorf("deleted org's audit log = %v, %v; want none", got, err)
	}
	for _, u := range []User{owner, member} {
		if _, err := s.GetUser(ctx, u.ID); err != nil {
			t.Errorf("user %s went with the org: %v", u.Email, err)
		}
		orgs, err := s.ListUserOrgs(ctx, u.ID, "", 10)
		if err != nil || len(orgs) != 1 || orgs[0].ID != kept.ID {
			t.Errorf("orgs of %s = %+v, %v; want just kept", u.Email, orgs, err)
		}
	}

	// The other org is untouched.
	if got, err := s.GetToken(ctx, kept.ID, keptTok.ID); err != nil || got.Name != "ci" {
		t.Errorf("kept token = %+v, %v", got, err)
	}
	mustRole(t, s, kept, member, identity.RoleAdmin)
	if got, err := s.ListAudit(ctx, kept.ID, AuditFilter{}, "", 10); err != nil || len(got) != 1 {
		t.Errorf("kept audit log = %v, %v; want one event", got, err)
	}

	wantErr(t, "DeleteOrg(again)", s.DeleteOrg(ctx, doomed.ID), ErrNotFound)
	wantErr(t, "DeleteOrg(unknown)", s.DeleteOrg(ctx, newID(t)), ErrNotFound)

	// The name is retired for good: services key their data by org name,
	// so a new "doomed" would inherit the old one's images.
	err = s.CreateOrg(ctx, Org{ID: newID(t), Name: "doomed", Created: base, Updated: base}, member.ID)
	wantErr(t, "CreateOrg(retired name)", err, ErrExists)
	// The token's hash is free again.
	reborn := mustOrg(t, s, "reborn", member)
	again := doomedTok
	again.ID, again.OrgID = newID(t), reborn.ID
	if err := s.CreateToken(ctx, again); err != nil {
		t.Errorf("CreateToken with a deleted org's hash: %v", err)
	}
}

func testLimits(t *testing.T, s Store) {
	ctx := t.Context()
	for _, limit := range []int{0, -1} {
		if _, err := s.ListUserOrgs(ctx, newID(t), "", limit); err == nil {
			t.Errorf("ListUserOrgs(limit %d) succeeded", limit)
		}
		if _, err := s.ListMembers(ctx, newID(t), "", limit); err == nil {
			t.Errorf("ListMembers(limit %d) succeeded", limit)
		}
		if _, err := s.ListTokens(ctx, newID(t), "", limit); err == nil {
			t.Errorf("ListTokens(limit %d) succeeded", limit)
		}
		if _, err := s.ListAudit(ctx, newID(t), AuditFilter{}, "", limit); err == nil {
			t.Errorf("ListAudit(limit %d) succeeded", limit)
		}
	}
}

// TestDeleteOrgWithoutForeignKeys checks that DeleteOrg removes an org's
// rows itself, even on a SQLite connection that does not enforce foreign
// keys (and so would not cascade).
func TestDeleteOrgWithoutForeignKeys(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, sqltest.SQLite(t)+"?_pragma=foreign_keys(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var fk int
	if err := s.db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 0 {
		t.Fatalf("PRAGMA foreign_keys = %d, %v; want 0", fk, err)
	}
	owner := mustUser(t, s, "nofk-owner")
	org := mustOrg(t, s, "nofk", owner)
	mustAddMember(t, s, org, mustUser(t, s, "nofk-member"), identity.RoleViewer)
	mustToken(t, s, org, "ci", owner)
	if err := s.AppendAudit(ctx, AuditEvent{ID: newID(t), OrgID: org.ID, Time: base, Actor: "user:x", Action: "CreateToken", Result: 201}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOrg(ctx, org.ID); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"orgs", "memberships", "tokens", "audit_events"} {
		var n int
		if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		if n != 0 {
			t.Errorf("%d rows left in %s, want 0", n, table)
		}
	}
	var users int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&users); err != nil || users != 2 {
		t.Errorf("%d users, %v; want both kept", users, err)
	}
}
