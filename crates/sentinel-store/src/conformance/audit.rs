//! Conformance of the audit logs: what changes record, the chain they form, the
//! database refusing edits, group commit, outbox, queries and retention.

use sentinel_core::audit::checkpoint::SigningKey;
use sentinel_core::audit::{AuditAction, Entity, EntityType, LogId, Outcome};

use super::*;
use crate::backend::with_db;
use crate::{AuditFilter, AuditLog};

fn key() -> SigningKey {
    SigningKey::from_seed(&[3; 32]).unwrap()
}

/// Checks a whole log the way `sentinel audit verify` does.
async fn verify(log: &AuditLog) -> Result<u64, String> {
    log.verify(&key().verifying_key())
        .await
        .unwrap()
        .map(|v| v.entries)
        .map_err(|e| e.to_string())
}

async fn actions(log: &AuditLog) -> Vec<String> {
    let mut entries = log
        .page(&AuditFilter::default(), 1000)
        .await
        .unwrap()
        .entries;
    entries.reverse();
    entries.into_iter().map(|e| e.action).collect()
}

async fn sign_head(log: &AuditLog, f: &Fixture) {
    let head = log.head().await.unwrap().unwrap();
    let checkpoint = key().sign(&log.id(), &head, f.clock.now());
    log.add_checkpoint(&checkpoint).await.unwrap();
}

fn denied(f: &Fixture, n: usize) -> sentinel_core::audit::AuditEvent {
    sys().event(
        f.clock.now(),
        AuditAction::MemberAdded,
        Entity::new(EntityType::User, n),
        serde_json::json!({ "n": n }),
        Outcome::Denied,
    )
}

conformance!(
    every_change_records_one_entry_in_the_right_log,
    |f: Fixture| async move {
        let alice = f.user("alice@example.org", true).await;
        let bob = f.user("bob@example.org", false).await;
        let control = f.stores.control();
        let now = f.clock.now();
        let org = f
            .stores
            .create_organization(&OrgName::parse("Acme").unwrap(), alice.id, &f.clock, sys())
            .await
            .unwrap();
        control
            .add_member(org.id, alice.id, bob.id, TenantRole::Analyst, now, sys())
            .await
            .unwrap();
        control
            .change_role(org.id, alice.id, bob.id, TenantRole::Admin, now, sys())
            .await
            .unwrap();
        control
            .rename_organization(org.id, &OrgName::parse("Acme 2").unwrap(), now, sys())
            .await
            .unwrap();
        control
            .remove_member(org.id, alice.id, bob.id, now, sys())
            .await
            .unwrap();
        // A refused change records nothing.
        assert!(
            control
                .remove_member(org.id, alice.id, alice.id, now, sys())
                .await
                .is_err()
        );
        control
            .set_platform_admin(bob.id, true, now, sys())
            .await
            .unwrap();
        control.delete_user(bob.id, now, sys()).await.unwrap();

        let platform = f.stores.audit_log(LogId::Platform).await.unwrap();
        assert_eq!(
            actions(&platform).await,
            [
                "user.created",
                "user.created",
                "org.created",
                "user.platform_admin_changed",
                "user.deleted"
            ]
        );
        // Organization events wait in the outbox until flushed, then land once.
        let org_log = f.stores.audit_log(LogId::Org(org.id)).await.unwrap();
        assert!(actions(&org_log).await.is_empty());
        f.stores.flush_all_audit_outboxes().await.unwrap();
        f.stores.flush_all_audit_outboxes().await.unwrap();
        assert_eq!(
            actions(&org_log).await,
            [
                "member.added",
                "member.role_changed",
                "org.renamed",
                "member.removed"
            ]
        );
        let renamed = org_log
            .page(
                &AuditFilter {
                    action: Some("org.renamed".into()),
                    ..Default::default()
                },
                10,
            )
            .await
            .unwrap()
            .entries;
        assert_eq!(renamed[0].detail, r#"{"from":"Acme","to":"Acme 2"}"#);
        assert_eq!(verify(&platform).await, Ok(5));
        assert_eq!(verify(&org_log).await, Ok(4));
        f
    }
);

conformance!(
    the_database_refuses_to_edit_or_delete_entries,
    |f: Fixture| async move {
        f.user("alice@example.org", true).await;
        let platform = f.stores.audit_log(LogId::Platform).await.unwrap();
        sign_head(&platform, &f).await;
        let db = f.stores.control().db();
        for sql in [
            "UPDATE audit_entries SET detail = '{}'",
            "DELETE FROM audit_entries",
            "UPDATE audit_checkpoints SET seq = 7",
            "DELETE FROM audit_checkpoints",
            "DELETE FROM audit_retention",
            "UPDATE audit_retention SET pruned_through = 5",
        ] {
            let result = with_db!(db, p => sqlx::query(sqlx::AssertSqlSafe(sql)).execute(p).await.map(|r| r.rows_affected()));
            assert!(result.is_err(), "{sql} was allowed");
        }
        if let crate::backend::Db::Postgres(p) = db {
            assert!(
                sqlx::query("TRUNCATE audit_entries")
                    .execute(p)
                    .await
                    .is_err()
            );
        }
        assert_eq!(verify(&platform).await, Ok(1));
        assert!(platform.missing_protections().await.unwrap().is_empty());
        let drop = match db {
            crate::backend::Db::Sqlite(..) => "DROP TRIGGER audit_entries_no_update",
            crate::backend::Db::Postgres(_) => {
                "DROP TRIGGER audit_entries_no_update ON audit_entries"
            }
        };
        with_db!(db, p => sqlx::query(sqlx::AssertSqlSafe(drop)).execute(p).await.map(|r| r.rows_affected()))
            .unwrap();
        assert_eq!(
            platform.missing_protections().await.unwrap(),
            ["audit_entries_no_update"]
        );
        f
    }
);

conformance!(
    group_commit_keeps_one_unbroken_chain_under_concurrency,
    |f: Fixture| async move {
        let org_owner = f.user("alice@example.org", true).await;
        let org = f
            .stores
            .create_organization(
                &OrgName::parse("Acme").unwrap(),
                org_owner.id,
                &f.clock,
                sys(),
            )
            .await
            .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..200 {
            let stores = f.stores.clone();
            let event = denied(&f, n);
            let log = if n % 2 == 0 {
                LogId::Platform
            } else {
                LogId::Org(org.id)
            };
            tasks.spawn(async move { stores.record(log, event).await });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
        let platform = f.stores.audit_log(LogId::Platform).await.unwrap();
        let org_log = f.stores.audit_log(LogId::Org(org.id)).await.unwrap();
        assert_eq!(verify(&platform).await, Ok(102));
        assert_eq!(verify(&org_log).await, Ok(100));
        // Appending the same events again stores nothing new.
        let again = org_log.entries(1..11).await.unwrap();
        let event = sentinel_core::audit::AuditEvent {
            id: again[0].event_id,
            ..denied(&f, 0)
        };
        assert!(org_log.append(&[event]).await.unwrap().is_empty());
        assert_eq!(verify(&org_log).await, Ok(100));
        f
    }
);

conformance!(
    filtered_pages_are_stable_under_appends,
    |f: Fixture| async move {
        let platform = f.stores.audit_log(LogId::Platform).await.unwrap();
        let events: Vec<_> = (0..30)
            .map(|n| {
                let mut e = denied(&f, n);
                if n % 3 == 0 {
                    e.action = AuditAction::MemberRemoved;
                    e.detail = serde_json::json!({ "note": format!("100% match_{n}") });
                }
                e
            })
            .collect();
        platform.append(&events).await.unwrap();
        let removed = AuditFilter {
            action: Some("member.removed".into()),
            ..Default::default()
        };
        let first = platform.page(&removed, 4).await.unwrap();
        assert_eq!(
            first.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [28, 25, 22, 19]
        );
        assert_eq!(first.next, Some(19));
        // New entries do not shift the next page.
        platform.append(&[denied(&f, 99)]).await.unwrap();
        let next = AuditFilter {
            before_seq: Some(19),
            ..removed.clone()
        };
        let second = platform.page(&next, 4).await.unwrap();
        assert_eq!(
            second.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [16, 13, 10, 7]
        );
        // Free text is literal: `%` and `_` are not wildcards.
        let text = |t: &str| AuditFilter {
            text: Some(t.into()),
            ..Default::default()
        };
        assert_eq!(
            platform
                .page(&text("100% MATCH_3"), 50)
                .await
                .unwrap()
                .entries
                .len(),
            1
        );
        assert_eq!(
            platform
                .page(&text("100%_match"), 50)
                .await
                .unwrap()
                .entries
                .len(),
            0
        );
        assert_eq!(
            platform
                .page(&text("' OR 1=1 --"), 50)
                .await
                .unwrap()
                .entries
                .len(),
            0
        );
        let none = AuditFilter {
            outcome: Some("success".into()),
            ..Default::default()
        };
        assert!(platform.page(&none, 50).await.unwrap().entries.is_empty());
        let window = AuditFilter {
            since: Some(f.clock.now()),
            until: Some(f.clock.now().plus(Duration::from_secs(1))),
            ..Default::default()
        };
        assert_eq!(platform.page(&window, 100).await.unwrap().entries.len(), 31);
        // Free text searches a window of entries per page, then says where to
        // go on: every match is found, a window at a time.
        let windowed = |before: Option<i64>| {
            let platform = platform.clone();
            async move {
                let filter = AuditFilter {
                    before_seq: before,
                    ..text("100% match")
                };
                platform.page_within(&filter, 50, 10).await.unwrap()
            }
        };
        let head = platform.head().await.unwrap().unwrap().seq;
        let mut found = Vec::new();
        let mut before = None;
        let mut pages = 0;
        loop {
            let page = windowed(before).await;
            assert!(
                page.entries
                    .iter()
                    .all(|e| e.seq >= head + 1 - 10 * (pages + 1))
            );
            found.extend(page.entries.iter().map(|e| e.seq));
            pages += 1;
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        assert_eq!(found, [28, 25, 22, 19, 16, 13, 10, 7, 4, 1]);
        assert_eq!(pages, (head + 9) / 10);
        f
    }
);

conformance!(
    retention_prunes_only_to_a_checkpoint_and_the_log_still_verifies,
    |f: Fixture| async move {
        let platform = f.stores.audit_log(LogId::Platform).await.unwrap();
        let old: Vec<_> = (0..10).map(|n| denied(&f, n)).collect();
        platform.append(&old).await.unwrap();
        let cutoff = f.clock.now().plus(Duration::from_secs(1));
        // Nothing is signed yet: nothing can be pruned.
        assert_eq!(platform.prune(cutoff, f.clock.now()).await.unwrap(), 0);
        let six = platform.entries(6..7).await.unwrap().remove(0);
        platform
            .add_checkpoint(&key().sign(&LogId::Platform, &six, f.clock.now()))
            .await
            .unwrap();
        f.clock.advance(Duration::from_secs(3600));
        platform.append(&[denied(&f, 10)]).await.unwrap();
        assert_eq!(platform.prune(cutoff, f.clock.now()).await.unwrap(), 6);
        assert_eq!(platform.pruned_through().await.unwrap(), 6);
        assert_eq!(verify(&platform).await, Ok(6));
        let head = platform.head().await.unwrap().unwrap();
        assert_eq!(head.action, "audit.pruned");
        assert_eq!(platform.prune(cutoff, f.clock.now()).await.unwrap(), 0);
        // Pruning further by hand, past where a checkpoint is, is refused.
        let db = f.stores.control().db();
        let result = with_db!(write db, p => sqlx::query("UPDATE audit_retention SET pruned_through = 9")
            .execute(p).await.map(|r| r.rows_affected()));
        assert!(result.is_err());
        // Pruning every entry: the chain goes on from the checkpoint, not
        // from a new start.
        let head = platform.head().await.unwrap().unwrap();
        platform
            .add_checkpoint(&key().sign(&LogId::Platform, &head, f.clock.now()))
            .await
            .unwrap();
        f.clock.advance(Duration::from_secs(3600));
        let later = f.clock.now();
        assert_eq!(platform.prune(later, later).await.unwrap(), 6);
        let after = platform.head().await.unwrap().unwrap();
        assert_eq!((after.seq, after.prev_hash), (head.seq + 1, head.hash));
        assert_eq!(verify(&platform).await, Ok(1));
        f
    }
);
