//! Conformance of two-factor authentication at rest: time steps and recovery
//! codes accepted once (also when raced), enrolment states, login challenges,
//! removal ending sessions, and the organization policy.

use sentinel_core::TwoFactorPolicy;
use sentinel_core::audit::AuditAction;
use uuid::Uuid;

use super::*;
use crate::{AuditFilter, NewLoginChallenge};

async fn newest_action(f: &Fixture) -> String {
    let page = f
        .stores
        .control()
        .audit_log()
        .page(&AuditFilter::default(), 1)
        .await
        .unwrap();
    page.entries[0].action.clone()
}

/// Alice with two-factor authentication on (enrolment id returned) and the
/// hashes of her recovery codes.
async fn enrolled(f: &Fixture, alice: UserId) -> Uuid {
    let control = f.stores.control();
    let enrolment = Uuid::new_v4();
    control
        .start_two_factor_enrolment(alice, enrolment, b"sealed", f.clock.now(), sys())
        .await
        .unwrap();
    assert!(
        control
            .accept_totp_step(alice, enrolment, 100, false)
            .await
            .unwrap()
    );
    let codes: Vec<SecretHash> = (0u8..10).map(|n| SecretHash::of(&[n])).collect();
    control
        .enable_two_factor(alice, enrolment, &codes, f.clock.now(), sys())
        .await
        .unwrap();
    enrolment
}

conformance!(
    enrolment_is_pending_until_confirmed_and_steps_count_once,
    |f: Fixture| async move {
        let alice = f.user("alice@example.org", false).await;
        let control = f.stores.control();
        assert!(control.two_factor(alice.id).await.unwrap().is_none());
        let first = Uuid::new_v4();
        control
            .start_two_factor_enrolment(alice.id, first, b"one", f.clock.now(), sys())
            .await
            .unwrap();
        assert_eq!(newest_action(&f).await, "auth.2fa_enrolment_started");
        // Starting again replaces the pending secret; the old enrolment is dead.
        let second = Uuid::new_v4();
        control
            .start_two_factor_enrolment(alice.id, second, b"two", f.clock.now(), sys())
            .await
            .unwrap();
        let record = control.two_factor(alice.id).await.unwrap().unwrap();
        assert_eq!(record.enrolment_id, second);
        assert_eq!(record.sealed_secret, b"two");
        assert_eq!(record.enabled_at, None);
        assert!(!format!("{record:?}").contains("two"));
        assert!(
            !control
                .accept_totp_step(alice.id, first, 5, false)
                .await
                .unwrap()
        );
        // A pending enrolment accepts steps only as pending, not as "on".
        assert!(
            !control
                .accept_totp_step(alice.id, second, 5, true)
                .await
                .unwrap()
        );
        assert!(
            control
                .accept_totp_step(alice.id, second, 5, false)
                .await
                .unwrap()
        );
        let stale = control
            .enable_two_factor(alice.id, first, &[], f.clock.now(), sys())
            .await;
        assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
        let codes = [SecretHash::of(b"a"), SecretHash::of(b"b")];
        control
            .enable_two_factor(alice.id, second, &codes, f.clock.now(), sys())
            .await
            .unwrap();
        assert_eq!(newest_action(&f).await, "auth.2fa_enabled");
        assert_eq!(control.recovery_codes_left(alice.id).await.unwrap(), 2);
        let again = control
            .start_two_factor_enrolment(alice.id, Uuid::new_v4(), b"x", f.clock.now(), sys())
            .await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        // Steps: only ever forward, each once.
        assert!(
            !control
                .accept_totp_step(alice.id, second, 5, true)
                .await
                .unwrap()
        );
        assert!(
            !control
                .accept_totp_step(alice.id, second, 4, true)
                .await
                .unwrap()
        );
        assert!(
            control
                .accept_totp_step(alice.id, second, 6, true)
                .await
                .unwrap()
        );
        assert!(
            !control
                .accept_totp_step(alice.id, second, 6, true)
                .await
                .unwrap()
        );
        let other = f.user("bob@example.org", false).await;
        assert!(
            !control
                .accept_totp_step(other.id, second, 9, true)
                .await
                .unwrap()
        );
        f
    }
);

conformance!(
    a_raced_code_or_recovery_code_wins_once,
    |f: Fixture| async move {
        let alice = f.user("alice@example.org", false).await;
        let enrolment = enrolled(&f, alice.id).await;
        let control = f.stores.control().clone();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let control = control.clone();
            tasks.push(tokio::spawn(async move {
                control
                    .accept_totp_step(alice.id, enrolment, 200, true)
                    .await
                    .unwrap()
            }));
        }
        let mut wins = 0;
        for task in tasks {
            wins += usize::from(task.await.unwrap());
        }
        assert_eq!(wins, 1, "one step, one acceptance");

        let code = SecretHash::of(&[3]);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let control = control.clone();
            let now = f.clock.now();
            tasks.push(tokio::spawn(async move {
                control
                    .spend_recovery_code(alice.id, &code, now, sys())
                    .await
                    .unwrap()
            }));
        }
        let mut wins = 0;
        for task in tasks {
            wins += usize::from(task.await.unwrap());
        }
        assert_eq!(wins, 1, "one recovery code, one use");
        assert_eq!(newest_action(&f).await, "auth.recovery_code_used");
        assert_eq!(control.recovery_codes_left(alice.id).await.unwrap(), 9);
        assert!(
            !control
                .spend_recovery_code(alice.id, &SecretHash::of(b"nope"), f.clock.now(), sys())
                .await
                .unwrap()
        );
        // Another user's code hash opens nothing for Alice, and vice versa.
        let bob = f.user("bob@example.org", false).await;
        assert!(
            !control
                .spend_recovery_code(bob.id, &SecretHash::of(&[4]), f.clock.now(), sys())
                .await
                .unwrap()
        );
        // New codes replace all the old ones.
        control
            .replace_recovery_codes(alice.id, &[SecretHash::of(b"new")], f.clock.now(), sys())
            .await
            .unwrap();
        assert_eq!(newest_action(&f).await, "auth.recovery_codes_regenerated");
        assert!(
            !control
                .spend_recovery_code(alice.id, &SecretHash::of(&[4]), f.clock.now(), sys())
                .await
                .unwrap()
        );
        assert_eq!(control.recovery_codes_left(alice.id).await.unwrap(), 1);
        let off = control
            .replace_recovery_codes(bob.id, &[SecretHash::of(b"x")], f.clock.now(), sys())
            .await;
        assert!(matches!(off, Err(StoreError::NotFound)), "{off:?}");
        f
    }
);

conformance!(
    login_challenges_expire_and_allow_few_attempts,
    |f: Fixture| async move {
        let alice = f.user("alice@example.org", false).await;
        let control = f.stores.control();
        let checked = control
            .user_with_password(alice.id)
            .await
            .unwrap()
            .unwrap()
            .password_changed_at;
        let challenge = |n: u8| NewLoginChallenge {
            token_hash: SecretHash::of(&[n]),
            user_id: alice.id,
            password_checked_at: checked,
            created_at: f.clock.now(),
            expires_at: f.clock.now().plus(Duration::from_secs(300)),
        };
        control.create_login_challenge(&challenge(1)).await.unwrap();
        control.create_login_challenge(&challenge(2)).await.unwrap();
        let token = SecretHash::of(&[1]);
        for n in 1..=5 {
            let taken = control
                .attempt_login_challenge(&token, f.clock.now(), 5)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(taken.attempts, n);
            assert_eq!(taken.user_id, alice.id);
            assert_eq!(taken.password_checked_at, checked);
        }
        assert!(
            control
                .attempt_login_challenge(&token, f.clock.now(), 5)
                .await
                .unwrap()
                .is_none()
        );
        // Ending is single-use.
        let other = SecretHash::of(&[2]);
        assert!(control.end_login_challenge(&other).await.unwrap());
        assert!(!control.end_login_challenge(&other).await.unwrap());
        assert!(
            control
                .attempt_login_challenge(&other, f.clock.now(), 5)
                .await
                .unwrap()
                .is_none()
        );
        // Expiry, by the injected clock.
        control.create_login_challenge(&challenge(3)).await.unwrap();
        f.clock.advance(Duration::from_secs(300));
        let expired = SecretHash::of(&[3]);
        assert!(
            control
                .attempt_login_challenge(&expired, f.clock.now(), 5)
                .await
                .unwrap()
                .is_none()
        );
        f
    }
);

conformance!(
    removing_two_factor_ends_sessions_and_challenges,
    |f: Fixture| async move {
        let alice = f.user("alice@example.org", false).await;
        let control = f.stores.control();
        let off = control
            .remove_two_factor(
                alice.id,
                None,
                AuditAction::TwoFactorReset,
                f.clock.now(),
                sys(),
            )
            .await;
        assert!(matches!(off, Err(StoreError::NotFound)), "{off:?}");
        enrolled(&f, alice.id).await;
        let checked = control
            .user_with_password(alice.id)
            .await
            .unwrap()
            .unwrap()
            .password_changed_at;
        let mut ids = Vec::new();
        for n in 0u8..3 {
            let id = SessionId::random();
            ids.push(id);
            control
                .create_session(
                    &NewSession {
                        id,
                        secret_hash: SecretHash::of(&[n, n]),
                        user_id: alice.id,
                        created_at: f.clock.now(),
                        expires_at: f.clock.now().plus(Duration::from_secs(3600)),
                        client_ip: None,
                        user_agent: None,
                        password_checked_at: checked,
                    },
                    None,
                )
                .await
                .unwrap();
        }
        control
            .create_login_challenge(&NewLoginChallenge {
                token_hash: SecretHash::of(b"challenge"),
                user_id: alice.id,
                password_checked_at: checked,
                created_at: f.clock.now(),
                expires_at: f.clock.now().plus(Duration::from_secs(300)),
            })
            .await
            .unwrap();
        let ended = control
            .remove_two_factor(
                alice.id,
                Some(ids[0]),
                AuditAction::TwoFactorDisabled,
                f.clock.now(),
                sys(),
            )
            .await
            .unwrap();
        assert_eq!(ended, 2);
        assert_eq!(newest_action(&f).await, "auth.2fa_disabled");
        assert!(
            control
                .session_by_secret(&SecretHash::of(&[0, 0]))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            control
                .session_by_secret(&SecretHash::of(&[1, 1]))
                .await
                .unwrap()
                .is_none()
        );
        assert!(control.two_factor(alice.id).await.unwrap().is_none());
        assert_eq!(control.recovery_codes_left(alice.id).await.unwrap(), 0);
        assert!(
            control
                .attempt_login_challenge(&SecretHash::of(b"challenge"), f.clock.now(), 5)
                .await
                .unwrap()
                .is_none()
        );
        // A reset with no session to keep ends them all.
        enrolled(&f, alice.id).await;
        let ended = control
            .remove_two_factor(
                alice.id,
                None,
                AuditAction::TwoFactorReset,
                f.clock.now(),
                sys(),
            )
            .await
            .unwrap();
        assert_eq!(ended, 1);
        assert_eq!(newest_action(&f).await, "auth.2fa_reset");
        f
    }
);

conformance!(
    the_two_factor_policy_rides_on_the_membership,
    |f: Fixture| async move {
        let owner = f.user("owner@example.org", false).await;
        let analyst = f.user("analyst@example.org", false).await;
        let org = f
            .stores
            .create_organization(&OrgName::parse("Acme").unwrap(), owner.id, &f.clock, sys())
            .await
            .unwrap();
        let control = f.stores.control();
        control
            .add_member(
                org.id,
                owner.id,
                analyst.id,
                TenantRole::Analyst,
                f.clock.now(),
                sys(),
            )
            .await
            .unwrap();
        let membership = control.membership(org.id, owner.id).await.unwrap().unwrap();
        assert_eq!(membership.two_factor_policy(), TwoFactorPolicy::None);
        assert!(!membership.lacks_required_two_factor());
        // The owner would be covered and has no second factor: refused.
        for policy in [TwoFactorPolicy::Admins, TwoFactorPolicy::All] {
            let refused = control
                .set_two_factor_policy(org.id, owner.id, policy, f.clock.now(), sys())
                .await;
            assert!(
                matches!(refused, Err(StoreError::Refused(_))),
                "{refused:?}"
            );
        }
        let outsider = f.user("outsider@example.org", false).await;
        let stranger = control
            .set_two_factor_policy(
                org.id,
                outsider.id,
                TwoFactorPolicy::None,
                f.clock.now(),
                sys(),
            )
            .await;
        assert!(
            matches!(stranger, Err(StoreError::NotFound)),
            "{stranger:?}"
        );
        enrolled(&f, owner.id).await;
        let previous = control
            .set_two_factor_policy(
                org.id,
                owner.id,
                TwoFactorPolicy::Admins,
                f.clock.now(),
                sys(),
            )
            .await
            .unwrap();
        assert_eq!(previous, TwoFactorPolicy::None);
        let owner_view = control.membership(org.id, owner.id).await.unwrap().unwrap();
        assert_eq!(owner_view.two_factor_policy(), TwoFactorPolicy::Admins);
        assert!(!owner_view.lacks_required_two_factor());
        let analyst_view = control
            .membership(org.id, analyst.id)
            .await
            .unwrap()
            .unwrap();
        assert!(!analyst_view.lacks_required_two_factor());
        control
            .set_two_factor_policy(org.id, owner.id, TwoFactorPolicy::All, f.clock.now(), sys())
            .await
            .unwrap();
        let analyst_view = control
            .membership(org.id, analyst.id)
            .await
            .unwrap()
            .unwrap();
        assert!(analyst_view.lacks_required_two_factor());
        enrolled(&f, analyst.id).await;
        let analyst_view = control
            .membership(org.id, analyst.id)
            .await
            .unwrap()
            .unwrap();
        assert!(!analyst_view.lacks_required_two_factor());
        // A pending enrolment is not "on".
        let carol = f.user("carol@example.org", false).await;
        control
            .add_member(
                org.id,
                owner.id,
                carol.id,
                TenantRole::Readonly,
                f.clock.now(),
                sys(),
            )
            .await
            .unwrap();
        control
            .start_two_factor_enrolment(carol.id, Uuid::new_v4(), b"s", f.clock.now(), sys())
            .await
            .unwrap();
        let carol_view = control.membership(org.id, carol.id).await.unwrap().unwrap();
        assert!(carol_view.lacks_required_two_factor());
        // The change is in the organization's log.
        f.stores.flush_audit_outbox(org.id).await.unwrap();
        let log = f
            .stores
            .audit_log(sentinel_core::audit::LogId::Org(org.id))
            .await
            .unwrap();
        let entries = log.page(&AuditFilter::default(), 50).await.unwrap().entries;
        let changes: Vec<&str> = entries
            .iter()
            .filter(|e| e.action == "org.2fa_policy_changed")
            .map(|e| e.detail.as_str())
            .collect();
        assert_eq!(
            changes,
            [
                r#"{"from":"admins","to":"all"}"#,
                r#"{"from":"none","to":"admins"}"#
            ]
        );
        f
    }
);
