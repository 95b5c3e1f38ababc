//! The store conformance suite: every behaviour the rest of Sentinel relies on,
//! run against SQLite always and against PostgreSQL when
//! `SENTINEL_TEST_DATABASE_URL` names a server (required under `CI=true`).

use std::time::Duration;

use sentinel_core::{
    Clock, DisplayName, Email, ManualClock, OrgId, OrgName, PasswordHash, PasswordPolicy,
    Permission, SecretHash, SessionId, TenantRole, Timestamp, UserId,
};

use crate::testing::{TestDatabase, postgres_admin_url};
use crate::{NewSession, NewUser, SetupOutcome, StoreError, StoreLocation, Stores, User};
use sentinel_core::audit::AuditContext;

/// The actor of the changes these tests make.
fn sys() -> &'static AuditContext {
    static SYSTEM: std::sync::LazyLock<AuditContext> =
        std::sync::LazyLock::new(AuditContext::system);
    &SYSTEM
}

/// A fresh, empty store on one engine, and what it takes to clean up after it.
struct Fixture {
    stores: std::sync::Arc<Stores>,
    location: StoreLocation,
    clock: ManualClock,
    _dir: tempfile::TempDir,
    pg: Option<TestDatabase>,
}

impl Fixture {
    async fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let location = StoreLocation::Sqlite {
            data_dir: dir.path().to_owned(),
        };
        Self::open(location, dir, None).await
    }

    async fn postgres(test: &str) -> Option<Fixture> {
        let admin = postgres_admin_url(test).unwrap()?;
        let db = TestDatabase::create(&admin).await.unwrap();
        let location = StoreLocation::Postgres {
            url: sentinel_core::SecretString::new(db.url()),
        };
        Some(Self::open(location, tempfile::tempdir().unwrap(), Some(db)).await)
    }

    async fn open(
        location: StoreLocation,
        dir: tempfile::TempDir,
        pg: Option<TestDatabase>,
    ) -> Fixture {
        let clock = ManualClock::starting_at(Timestamp::from_unix_seconds(1_790_000_000));
        let stores = std::sync::Arc::new(Stores::open(&location, &clock).await.unwrap());
        Fixture {
            stores,
            location,
            clock,
            _dir: dir,
            pg,
        }
    }

    /// Closes and reopens the stores, as a restarted server would.
    async fn reopen(&mut self) {
        self.stores.close().await;
        self.stores = std::sync::Arc::new(Stores::open(&self.location, &self.clock).await.unwrap());
    }

    async fn finish(self) {
        self.stores.close().await;
        if let Some(db) = self.pg {
            db.drop_database().await.unwrap();
        }
    }

    async fn user(&self, email: &str, platform_admin: bool) -> User {
        let password = PasswordPolicy::default()
            .check("orbit lantern velvet quarry", &[])
            .unwrap();
        let new = NewUser {
            email: Email::parse(email).unwrap(),
            name: DisplayName::parse(email.split('@').next().unwrap()).unwrap(),
            password_hash: PasswordHash::new(&password).unwrap(),
            platform_admin,
        };
        self.stores
            .control()
            .create_user(&new, self.clock.now(), sys())
            .await
            .unwrap()
    }
}

/// Defines `name_sqlite` and `name_postgres` tests running `body(fixture)`.
macro_rules! conformance {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let f = Fixture::sqlite().await;
                let f = ($body)(f).await;
                f.finish().await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(f) = Fixture::postgres(concat!(stringify!($name), "::postgres")).await
                else {
                    return;
                };
                let f = ($body)(f).await;
                f.finish().await;
            }
        }
    };
}

conformance!(
    migrations_are_idempotent_across_restarts,
    |mut f: Fixture| async move {
        let alice = f.user("alice@example.org", true).await;
        let org = f
            .stores
            .create_organization(&OrgName::parse("Acme").unwrap(), alice.id, &f.clock, sys())
            .await
            .unwrap();
        f.reopen().await;
        f.reopen().await;
        let control = f.stores.control();
        assert_eq!(control.count_users().await.unwrap(), 1);
        assert_eq!(
            control
                .organization(org.id)
                .await
                .unwrap()
                .unwrap()
                .name
                .as_str(),
            "Acme"
        );
        let access = control
            .membership(org.id, alice.id)
            .await
            .unwrap()
            .unwrap()
            .authorize(Permission::OrgRead)
            .unwrap();
        let tenant = f.stores.tenants().open(&access).await.unwrap();
        assert_eq!(tenant.identity().await.unwrap().org_id, org.id);
        f
    }
);

conformance!(
    users_are_unique_by_normalized_email,
    |f: Fixture| async move {
        let alice = f.user("alice@example.org", false).await;
        let control = f.stores.control();
        let duplicate = NewUser {
            email: Email::parse("  ALICE@Example.org").unwrap(),
            name: DisplayName::parse("Other Alice").unwrap(),
            password_hash: PasswordHash::from_trusted("x".into()),
            platform_admin: false,
        };
        let err = control
            .create_user(&duplicate, f.clock.now(), sys())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        let found = control
            .user_by_email(&Email::parse("Alice@EXAMPLE.org").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.user, alice);
        assert!(found.password_hash.verify("orbit lantern velvet quarry"));
        assert!(control.user(UserId::random()).await.unwrap().is_none());
        assert_eq!(control.count_users().await.unwrap(), 1);
        f
    }
);

conformance!(
    password_changes_end_every_session,
    |f: Fixture| async move {
        let alice = f.user("alice@example.org", false).await;
        let control = f.stores.control();
        let before = control.user_with_password(alice.id).await.unwrap().unwrap();
        let session = |n: u8, checked: Timestamp| NewSession {
            id: SessionId::random(),
            secret_hash: SecretHash::of(&[n]),
            user_id: alice.id,
            created_at: f.clock.now(),
            expires_at: f.clock.now().plus(Duration::from_secs(3600)),
            client_ip: None,
            user_agent: None,
            password_checked_at: checked,
        };
        control
            .create_session(&session(1, before.password_changed_at), None)
            .await
            .unwrap();
        control
            .create_session(&session(2, before.password_changed_at), None)
            .await
            .unwrap();

        let new = PasswordPolicy::default()
            .check("granite meadow cobalt whistle", &[])
            .unwrap();
        f.clock.advance(Duration::from_secs(60));
        let ended = control
            .change_password(
                alice.id,
                &PasswordHash::new(&new).unwrap(),
                f.clock.now(),
                sys(),
            )
            .await
            .unwrap();
        assert_eq!(ended, 2);
        let stored = control.user_with_password(alice.id).await.unwrap().unwrap();
        assert!(stored.password_hash.verify("granite meadow cobalt whistle"));
        assert!(!stored.password_hash.verify("orbit lantern velvet quarry"));
        assert_eq!(stored.password_changed_at, f.clock.now());
        assert!(
            control
                .session_by_secret(&SecretHash::of(&[1]))
                .await
                .unwrap()
                .is_none()
        );

        // A login that checked the old password loses the race: no session.
        let late = control
            .create_session(&session(3, before.password_changed_at), None)
            .await;
        assert!(matches!(late, Err(StoreError::NotFound)), "{late:?}");
        control
            .create_session(&session(4, stored.password_changed_at), None)
            .await
            .unwrap();

        let missing = control
            .change_password(
                UserId::random(),
                &stored.password_hash,
                f.clock.now(),
                sys(),
            )
            .await;
        assert!(matches!(missing, Err(StoreError::NotFound)));
        f
    }
);

conformance!(the_last_platform_admin_stays, |f: Fixture| async move {
    let root = f.user("root@example.org", true).await;
    let bob = f.user("bob@example.org", false).await;
    let control = f.stores.control();
    assert!(matches!(
        control
            .set_platform_admin(root.id, false, f.clock.now(), sys())
            .await,
        Err(StoreError::Refused(_))
    ));
    assert!(matches!(
        control.delete_user(root.id, f.clock.now(), sys()).await,
        Err(StoreError::Refused(_))
    ));
    assert!(
        control
            .set_platform_admin(bob.id, true, f.clock.now(), sys())
            .await
            .unwrap()
            .platform_admin
    );
    assert!(
        !control
            .set_platform_admin(root.id, false, f.clock.now(), sys())
            .await
            .unwrap()
            .platform_admin
    );
    assert!(matches!(
        control
            .set_platform_admin(UserId::random(), true, f.clock.now(), sys())
            .await,
        Err(StoreError::NotFound)
    ));
    f
});

conformance!(
    organizations_get_unique_slugs_and_an_owner,
    |f: Fixture| async move {
        let alice = f.user("alice@example.org", false).await;
        let bob = f.user("bob@example.org", false).await;
        let name = OrgName::parse("Acme Schools").unwrap();
        let a = f
            .stores
            .create_organization(&name, alice.id, &f.clock, sys())
            .await
            .unwrap();
        let b = f
            .stores
            .create_organization(&name, bob.id, &f.clock, sys())
            .await
            .unwrap();
        assert_eq!(a.slug.as_str(), "acme-schools");
        assert_eq!(b.slug.as_str(), "acme-schools-2");
        let control = f.stores.control();
        let alices = control.organizations_of(alice.id).await.unwrap();
        assert_eq!(alices.len(), 1);
        assert_eq!(alices[0].organization.id, a.id);
        assert_eq!(alices[0].role, Some(TenantRole::Owner));
        let all = control.all_organizations_for(alice.id).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            all.iter().find(|o| o.organization.id == b.id).unwrap().role,
            None
        );
        let ghost = f
            .stores
            .create_organization(&name, UserId::random(), &f.clock, sys())
            .await;
        assert!(matches!(ghost, Err(StoreError::NotFound)), "{ghost:?}");
        assert_eq!(
            control.all_organizations().await.unwrap().len(),
            2,
            "the failed creation left nothing"
        );
        let renamed = control
            .rename_organization(a.id, &OrgName::parse("Acme").unwrap(), f.clock.now(), sys())
            .await
            .unwrap();
        assert_eq!(renamed.name.as_str(), "Acme");
        assert_eq!(renamed.slug.as_str(), "acme-schools", "the slug is stable");
        f
    }
);

conformance!(memberships_keep_an_owner, |f: Fixture| async move {
    let alice = f.user("alice@example.org", false).await;
    let bob = f.user("bob@example.org", false).await;
    let org = f
        .stores
        .create_organization(&OrgName::parse("Acme").unwrap(), alice.id, &f.clock, sys())
        .await
        .unwrap();
    let control = f.stores.control();
    let now = f.clock.now();
    let a = alice.id;

    control
        .add_member(org.id, a, bob.id, TenantRole::Readonly, now, sys())
        .await
        .unwrap();
    let again = control
        .add_member(org.id, a, bob.id, TenantRole::Admin, now, sys())
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let ghost = control
        .add_member(org.id, a, UserId::random(), TenantRole::Admin, now, sys())
        .await;
    assert!(matches!(ghost, Err(StoreError::NotFound)), "{ghost:?}");

    let members = control.members(org.id).await.unwrap();
    assert_eq!(
        members
            .iter()
            .map(|m| (m.email.as_str(), m.role))
            .collect::<Vec<_>>(),
        [
            ("alice@example.org", TenantRole::Owner),
            ("bob@example.org", TenantRole::Readonly)
        ]
    );

    let last = control
        .change_role(org.id, a, a, TenantRole::Admin, f.clock.now(), sys())
        .await;
    assert!(matches!(last, Err(StoreError::Refused(_))), "{last:?}");
    assert!(matches!(
        control
            .remove_member(org.id, a, a, f.clock.now(), sys())
            .await,
        Err(StoreError::Refused(_))
    ));
    assert!(matches!(
        control.delete_user(a, f.clock.now(), sys()).await,
        Err(StoreError::Refused(_))
    ));

    assert_eq!(
        control
            .change_role(org.id, a, bob.id, TenantRole::Owner, f.clock.now(), sys())
            .await
            .unwrap(),
        TenantRole::Readonly
    );
    assert_eq!(
        control
            .change_role(org.id, a, a, TenantRole::Analyst, f.clock.now(), sys())
            .await
            .unwrap(),
        TenantRole::Owner
    );
    let b = bob.id;
    assert_eq!(
        control
            .remove_member(org.id, b, a, f.clock.now(), sys())
            .await
            .unwrap(),
        TenantRole::Analyst
    );
    assert!(control.membership(org.id, a).await.unwrap().is_none());
    assert!(matches!(
        control
            .remove_member(org.id, b, a, f.clock.now(), sys())
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        control
            .change_role(org.id, b, a, TenantRole::Admin, f.clock.now(), sys())
            .await,
        Err(StoreError::NotFound)
    ));
    f
});

conformance!(the_actors_current_role_decides, |f: Fixture| async move {
    let owner = f.user("owner@example.org", false).await;
    let admin = f.user("admin@example.org", false).await;
    let member = f.user("member@example.org", false).await;
    let outsider = f.user("outsider@example.org", false).await;
    let org = f
        .stores
        .create_organization(&OrgName::parse("Acme").unwrap(), owner.id, &f.clock, sys())
        .await
        .unwrap();
    let control = f.stores.control();
    let now = f.clock.now();
    control
        .add_member(org.id, owner.id, admin.id, TenantRole::Admin, now, sys())
        .await
        .unwrap();

    let grant_owner = control
        .add_member(org.id, admin.id, member.id, TenantRole::Owner, now, sys())
        .await;
    assert!(
        matches!(grant_owner, Err(StoreError::NotPermitted(_))),
        "{grant_owner:?}"
    );
    control
        .add_member(org.id, admin.id, member.id, TenantRole::Analyst, now, sys())
        .await
        .unwrap();
    let promote = control
        .change_role(
            org.id,
            admin.id,
            member.id,
            TenantRole::Owner,
            f.clock.now(),
            sys(),
        )
        .await;
    assert!(matches!(promote, Err(StoreError::NotPermitted(_))));
    let demote_owner = control
        .change_role(
            org.id,
            admin.id,
            owner.id,
            TenantRole::Readonly,
            f.clock.now(),
            sys(),
        )
        .await;
    assert!(matches!(demote_owner, Err(StoreError::NotPermitted(_))));
    let remove_owner = control
        .remove_member(org.id, admin.id, owner.id, f.clock.now(), sys())
        .await;
    assert!(matches!(remove_owner, Err(StoreError::NotPermitted(_))));
    let by_outsider = control
        .change_role(
            org.id,
            outsider.id,
            member.id,
            TenantRole::Admin,
            f.clock.now(),
            sys(),
        )
        .await;
    assert!(matches!(by_outsider, Err(StoreError::NotPermitted(_))));

    // Once the owner makes the member an owner, the admin can no longer demote them.
    control
        .change_role(
            org.id,
            owner.id,
            member.id,
            TenantRole::Owner,
            f.clock.now(),
            sys(),
        )
        .await
        .unwrap();
    let stale = control
        .change_role(
            org.id,
            admin.id,
            member.id,
            TenantRole::Readonly,
            f.clock.now(),
            sys(),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::NotPermitted(_))),
        "{stale:?}"
    );
    // And a demoted admin has lost their powers at once.
    control
        .change_role(
            org.id,
            owner.id,
            admin.id,
            TenantRole::Readonly,
            f.clock.now(),
            sys(),
        )
        .await
        .unwrap();
    let demoted = control
        .add_member(
            org.id,
            admin.id,
            outsider.id,
            TenantRole::Readonly,
            now,
            sys(),
        )
        .await;
    assert!(matches!(demoted, Err(StoreError::NotPermitted(_))));
    f
});

conformance!(
    concurrent_demotions_never_leave_an_organization_ownerless,
    |f: Fixture| async move {
        let alice = f.user("alice@example.org", false).await;
        let bob = f.user("bob@example.org", false).await;
        let control = f.stores.control();
        for round in 0..5 {
            let name = OrgName::parse(&format!("Race {round}")).unwrap();
            let org = f
                .stores
                .create_organization(&name, alice.id, &f.clock, sys())
                .await
                .unwrap();
            control
                .add_member(
                    org.id,
                    alice.id,
                    bob.id,
                    TenantRole::Owner,
                    f.clock.now(),
                    sys(),
                )
                .await
                .unwrap();
            let (a, b) = tokio::join!(
                control.change_role(
                    org.id,
                    bob.id,
                    alice.id,
                    TenantRole::Admin,
                    f.clock.now(),
                    sys()
                ),
                control.change_role(
                    org.id,
                    alice.id,
                    bob.id,
                    TenantRole::Admin,
                    f.clock.now(),
                    sys()
                ),
            );
            assert!(
                a.is_ok() != b.is_ok(),
                "exactly one demotion may succeed: {a:?} {b:?}"
            );
            let members = control.members(org.id).await.unwrap();
            assert_eq!(
                members
                    .iter()
                    .filter(|m| m.role == TenantRole::Owner)
                    .count(),
                1
            );
        }
        f
    }
);

conformance!(
    deleting_a_user_never_leaves_an_organization_ownerless,
    |f: Fixture| async move {
        let alice = f.user("alice@example.org", false).await;
        let bob = f.user("bob@example.org", false).await;
        let control = f.stores.control();
        for round in 0..5 {
            let name = OrgName::parse(&format!("Race {round}")).unwrap();
            let org = f
                .stores
                .create_organization(&name, alice.id, &f.clock, sys())
                .await
                .unwrap();
            control
                .add_member(
                    org.id,
                    alice.id,
                    bob.id,
                    TenantRole::Owner,
                    f.clock.now(),
                    sys(),
                )
                .await
                .unwrap();
            let (stepped_down, deleted) = tokio::join!(
                control.change_role(
                    org.id,
                    alice.id,
                    alice.id,
                    TenantRole::Admin,
                    f.clock.now(),
                    sys()
                ),
                control.delete_user(bob.id, f.clock.now(), sys()),
            );
            let members = control.members(org.id).await.unwrap();
            assert_eq!(
                members
                    .iter()
                    .filter(|m| m.role == TenantRole::Owner)
                    .count(),
                1,
                "round {round}: {stepped_down:?} {deleted:?}"
            );
            if deleted.is_ok() {
                break;
            }
            control
                .change_role(
                    org.id,
                    bob.id,
                    alice.id,
                    TenantRole::Owner,
                    f.clock.now(),
                    sys(),
                )
                .await
                .ok();
        }
        f
    }
);

conformance!(sessions_expire_and_end, |f: Fixture| async move {
    let alice = f.user("alice@example.org", false).await;
    let control = f.stores.control();
    let idle = Duration::from_secs(30 * 60);
    let checked = control
        .user_with_password(alice.id)
        .await
        .unwrap()
        .unwrap()
        .password_changed_at;
    let new_session = |n: u8| NewSession {
        id: SessionId::random(),
        password_checked_at: checked,
        secret_hash: SecretHash::of(&[n]),
        user_id: alice.id,
        created_at: f.clock.now(),
        expires_at: f.clock.now().plus(Duration::from_secs(24 * 3600)),
        client_ip: Some("192.0.2.1".into()),
        user_agent: Some("test".into()),
    };
    let first = new_session(1);
    control.create_session(&first, None).await.unwrap();
    let first = first.id;
    let second = new_session(2);
    control.create_session(&second, None).await.unwrap();
    let second = second.id;
    let (record, user) = control
        .session_by_secret(&SecretHash::of(&[1]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.id, first);
    assert_eq!(user, alice, "the session's user, every field");
    assert!(
        control
            .session_by_secret(&SecretHash::of(&[3]))
            .await
            .unwrap()
            .is_none()
    );

    f.clock.advance(Duration::from_secs(20 * 60));
    assert!(record.is_live(f.clock.now(), idle));
    control.touch_session(first, f.clock.now()).await.unwrap();
    f.clock.advance(Duration::from_secs(20 * 60));
    let (touched, _) = control
        .session_by_secret(&SecretHash::of(&[1]))
        .await
        .unwrap()
        .unwrap();
    assert!(touched.is_live(f.clock.now(), idle), "touched 20 min ago");
    let (idle_one, _) = control
        .session_by_secret(&SecretHash::of(&[2]))
        .await
        .unwrap()
        .unwrap();
    assert!(!idle_one.is_live(f.clock.now(), idle), "idle for 40 min");
    assert_eq!(
        control.purge_sessions(f.clock.now(), idle).await.unwrap(),
        1
    );
    assert!(
        control
            .session_by_secret(&SecretHash::of(&[2]))
            .await
            .unwrap()
            .is_none()
    );
    let _ = second;

    let third = new_session(3);
    control.create_session(&third, None).await.unwrap();
    let third = third.id;
    assert!(
        control
            .session_by_secret(&SecretHash::of(&[3]))
            .await
            .unwrap()
            .is_some()
    );
    control.delete_session(third, None).await.unwrap();
    assert!(
        control
            .session_by_secret(&SecretHash::of(&[3]))
            .await
            .unwrap()
            .is_none()
    );

    let late = new_session(4);
    control.create_session(&late, None).await.unwrap();
    let late = late.id;
    let _ = late;
    for _ in 0..5 {
        f.clock.advance(Duration::from_secs(25 * 60));
        let (s, _) = control
            .session_by_secret(&SecretHash::of(&[4]))
            .await
            .unwrap()
            .unwrap();
        control.touch_session(s.id, f.clock.now()).await.unwrap();
    }
    f.clock.advance(Duration::from_secs(22 * 3600));
    let (s, _) = control
        .session_by_secret(&SecretHash::of(&[4]))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !s.is_live(f.clock.now(), idle),
        "past the absolute lifetime despite activity"
    );
    f
});

conformance!(setup_tokens_work_once, |f: Fixture| async move {
    let control = f.stores.control();
    let token = SecretHash::of(b"token-one");
    let now = f.clock.now();
    control
        .replace_setup_token(&token, now, now.plus(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert!(control.setup_token_usable(&token, now).await.unwrap());
    assert!(
        !control
            .setup_token_usable(&SecretHash::of(b"other"), now)
            .await
            .unwrap()
    );

    let admin = NewUser {
        email: Email::parse("root@example.org").unwrap(),
        name: DisplayName::parse("Root").unwrap(),
        password_hash: PasswordHash::from_trusted("x".into()),
        platform_admin: false,
    };
    let wrong = control
        .complete_setup(&SecretHash::of(b"other"), &admin, now, sys())
        .await
        .unwrap();
    assert!(matches!(wrong, SetupOutcome::InvalidToken));
    let SetupOutcome::Completed(root) = control
        .complete_setup(&token, &admin, now, sys())
        .await
        .unwrap()
    else {
        panic!("setup did not complete");
    };
    assert!(root.platform_admin, "the first user is a platform admin");
    let replay = control
        .complete_setup(&token, &admin, now, sys())
        .await
        .unwrap();
    assert!(matches!(replay, SetupOutcome::InvalidToken));
    assert!(!control.setup_token_usable(&token, now).await.unwrap());

    let late = SecretHash::of(b"token-two");
    control
        .replace_setup_token(&late, now, now.plus(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert!(
        !control.setup_token_usable(&late, now).await.unwrap(),
        "users exist"
    );
    let again = control
        .complete_setup(&late, &admin, now, sys())
        .await
        .unwrap();
    assert!(matches!(again, SetupOutcome::AlreadyDone));
    assert_eq!(control.count_users().await.unwrap(), 1);
    f
});

conformance!(expired_setup_tokens_are_refused, |f: Fixture| async move {
    let control = f.stores.control();
    let token = SecretHash::of(b"token");
    let now = f.clock.now();
    control
        .replace_setup_token(&token, now, now.plus(Duration::from_secs(3600)))
        .await
        .unwrap();
    let replaced = SecretHash::of(b"newer");
    control
        .replace_setup_token(&replaced, now, now.plus(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert!(
        !control.setup_token_usable(&token, now).await.unwrap(),
        "a replaced token is dead"
    );
    f.clock.advance(Duration::from_secs(3601));
    assert!(
        !control
            .setup_token_usable(&replaced, f.clock.now())
            .await
            .unwrap()
    );
    let admin = NewUser {
        email: Email::parse("root@example.org").unwrap(),
        name: DisplayName::parse("Root").unwrap(),
        password_hash: PasswordHash::from_trusted("x".into()),
        platform_admin: true,
    };
    let late = control
        .complete_setup(&replaced, &admin, f.clock.now(), sys())
        .await
        .unwrap();
    assert!(matches!(late, SetupOutcome::InvalidToken));
    assert_eq!(control.count_users().await.unwrap(), 0);
    f
});

conformance!(
    tenant_access_needs_a_membership_that_grants_the_permission,
    |f: Fixture| async move {
        let alice = f.user("alice@example.org", false).await;
        let reader = f.user("reader@example.org", false).await;
        let control = f.stores.control();
        let a = f
            .stores
            .create_organization(&OrgName::parse("A").unwrap(), alice.id, &f.clock, sys())
            .await
            .unwrap();
        let b = f
            .stores
            .create_organization(&OrgName::parse("B").unwrap(), alice.id, &f.clock, sys())
            .await
            .unwrap();
        control
            .add_member(
                a.id,
                alice.id,
                reader.id,
                TenantRole::Readonly,
                f.clock.now(),
                sys(),
            )
            .await
            .unwrap();

        let membership = control.membership(a.id, reader.id).await.unwrap().unwrap();
        assert!(membership.authorize(Permission::MembersManage).is_err());
        let access = membership.authorize(Permission::OrgRead).unwrap();
        assert_eq!(
            (access.org_id(), access.role()),
            (a.id, TenantRole::Readonly)
        );
        assert!(
            control.membership(b.id, reader.id).await.unwrap().is_none(),
            "no membership, no access to B"
        );

        let store_a = f.stores.tenants().open(&access).await.unwrap();
        assert_eq!(store_a.identity().await.unwrap().org_id, a.id);
        let owner_b = control
            .membership(b.id, alice.id)
            .await
            .unwrap()
            .unwrap()
            .authorize(Permission::OrgRead)
            .unwrap();
        let store_b = f.stores.tenants().open(&owner_b).await.unwrap();
        assert_eq!(store_b.identity().await.unwrap().org_id, b.id);
        f
    }
);

conformance!(
    deleting_an_organization_removes_its_tenant_store,
    |mut f: Fixture| async move {
        let alice = f.user("alice@example.org", false).await;
        let org = f
            .stores
            .create_organization(
                &OrgName::parse("Doomed").unwrap(),
                alice.id,
                &f.clock,
                sys(),
            )
            .await
            .unwrap();
        let access = f
            .stores
            .control()
            .membership(org.id, alice.id)
            .await
            .unwrap()
            .unwrap()
            .authorize(Permission::OrgRead)
            .unwrap();
        f.stores.tenants().open(&access).await.unwrap();
        f.stores
            .delete_organization(org.id, &f.clock, sys())
            .await
            .unwrap();
        assert!(
            f.stores
                .control()
                .organization(org.id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            f.stores
                .control()
                .membership(org.id, alice.id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            f.stores.delete_organization(org.id, &f.clock, sys()).await,
            Err(StoreError::NotFound)
        ));
        f.reopen().await;
        let reopened = f.stores.tenants().open(&access).await;
        if matches!(f.location, StoreLocation::Sqlite { .. }) {
            assert!(reopened.is_err(), "the database file is gone");
        } else {
            assert!(
                reopened.unwrap().identity().await.is_err(),
                "the schema is gone"
            );
        }
        f
    }
);

conformance!(stray_tenant_stores_are_found, |f: Fixture| async move {
    let alice = f.user("alice@example.org", false).await;
    let kept = f
        .stores
        .create_organization(&OrgName::parse("Kept").unwrap(), alice.id, &f.clock, sys())
        .await
        .unwrap();
    let _ = kept;
    assert!(f.stores.stray_tenant_stores().await.unwrap().is_empty());
    // An organization whose control rows vanish without its tenant store.
    let lost = OrgId::random();
    f.stores
        .tenants()
        .provision(lost, f.clock.now())
        .await
        .unwrap();
    let strays = f.stores.stray_tenant_stores().await.unwrap();
    assert_eq!(strays.len(), 1, "{strays:?}");
    assert!(
        strays[0].contains(&lost.as_uuid().simple().to_string())
            || strays[0].contains(&lost.to_string())
    );
    f.stores.tenants().destroy(lost).await.unwrap();
    assert!(f.stores.stray_tenant_stores().await.unwrap().is_empty());
    f
});

#[tokio::test]
async fn a_swapped_sqlite_tenant_file_is_refused() {
    let f = Fixture::sqlite().await;
    let alice = f.user("alice@example.org", false).await;
    let a = f
        .stores
        .create_organization(&OrgName::parse("A").unwrap(), alice.id, &f.clock, sys())
        .await
        .unwrap();
    let b = f
        .stores
        .create_organization(&OrgName::parse("B").unwrap(), alice.id, &f.clock, sys())
        .await
        .unwrap();
    f.stores.close().await;
    let StoreLocation::Sqlite { data_dir } = &f.location else {
        unreachable!()
    };
    let orgs = data_dir.join("orgs");
    std::fs::copy(
        orgs.join(format!("{}.db", a.id)),
        orgs.join(format!("{}.db", b.id)),
    )
    .unwrap();
    let reopened = Stores::open(&f.location, &f.clock).await;
    let err = reopened.unwrap_err();
    assert!(err.to_string().contains("belongs to organization"), "{err}");
}

#[tokio::test]
async fn a_missing_sqlite_tenant_file_stops_the_start() {
    let f = Fixture::sqlite().await;
    let alice = f.user("alice@example.org", false).await;
    let a = f
        .stores
        .create_organization(&OrgName::parse("A").unwrap(), alice.id, &f.clock, sys())
        .await
        .unwrap();
    f.stores.close().await;
    let StoreLocation::Sqlite { data_dir } = &f.location else {
        unreachable!()
    };
    std::fs::remove_file(data_dir.join("orgs").join(format!("{}.db", a.id))).unwrap();
    let err = Stores::open(&f.location, &f.clock).await.unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[tokio::test]
async fn sqlite_files_are_private_to_the_server_user() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::sqlite().await;
    let alice = f.user("alice@example.org", false).await;
    let a = f
        .stores
        .create_organization(&OrgName::parse("A").unwrap(), alice.id, &f.clock, sys())
        .await
        .unwrap();
    let StoreLocation::Sqlite { data_dir } = &f.location else {
        unreachable!()
    };
    let tenant = data_dir.join("orgs").join(format!("{}.db", a.id));
    let files = [
        data_dir.join("control.db"),
        data_dir.join("control.db-wal"),
        data_dir.join("control.db-shm"),
        tenant.with_extension("db-wal"),
        tenant.with_extension("db-shm"),
        tenant,
    ];
    for path in files {
        // The WAL files exist while the store is open and has written.
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    let mode = std::fs::metadata(data_dir.join("orgs"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
    f.finish().await;
}

mod audit;
mod lorawan;
mod telemetry;
mod two_factor;
