//! Conformance of IoT data: device profiles and their audited decoder hashes,
//! unique DevEUIs, profiles in use kept, broker passwords sealed at a site that
//! key rotation finds, uplinks stored once per deduplication id and read back
//! newest first.

use serde_json::json;
use uuid::Uuid;

use super::telemetry::enroll;
use super::*;
use crate::{
    AuditFilter, IntegrationChange, IntegrationSettings, NewIntegration, NewUplinkEvent,
    PasswordChange, SealedSite,
};

async fn newest_detail(f: &Fixture, org: OrgId) -> (String, serde_json::Value) {
    let log = f
        .stores
        .audit_log(sentinel_core::audit::LogId::Org(org))
        .await
        .unwrap();
    let page = log.page(&AuditFilter::default(), 1).await.unwrap();
    let entry = &page.entries[0];
    (
        entry.action.clone(),
        serde_json::from_str(&entry.detail).unwrap(),
    )
}

conformance!(
    profiles_devices_and_uplinks_keep_their_rules,
    |f: Fixture| async move {
        let (org, devices) = enroll(&f, 2).await;
        let tenant = f.stores.tenants().open_existing(org).await.unwrap();
        let now = f.clock.now();
        let code = "function decodeUplink(input) { return { data: {} }; }";
        let profile = tenant
            .create_device_profile("Sensors", Some(code), now, sys())
            .await
            .unwrap();
        let (action, detail) = newest_detail(&f, org).await;
        assert_eq!(action, "device_profile.created");
        assert_eq!(detail["decoder_hash"], crate::lorawan::code_hash(code));
        assert!(matches!(
            tenant
                .create_device_profile("Sensors", None, now, sys())
                .await,
            Err(StoreError::Conflict(_))
        ));
        tenant
            .update_device_profile(profile.id, "Sensors", None, now, sys())
            .await
            .unwrap();
        let (action, detail) = newest_detail(&f, org).await;
        assert_eq!(action, "device_profile.updated");
        assert_eq!(detail["old_decoder_hash"], crate::lorawan::code_hash(code));
        assert_eq!(detail["decoder_hash"], json!(null));

        // DevEUIs are unique; a refused change leaves the device as it was.
        let (first, second) = (devices[0].device_id(), devices[1].device_id());
        tenant
            .set_lorawan_device(
                first,
                Some(("0101010101010101", Some(profile.id))),
                now,
                sys(),
            )
            .await
            .unwrap();
        assert!(matches!(
            tenant
                .set_lorawan_device(second, Some(("0101010101010101", None)), now, sys())
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(tenant.lorawan_device(second).await.unwrap(), None);
        assert!(matches!(
            tenant
                .set_lorawan_device(
                    second,
                    Some(("0202020202020202", Some(Uuid::now_v7()))),
                    now,
                    sys()
                )
                .await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(tenant.lorawan_device(second).await.unwrap(), None);
        assert!(matches!(
            tenant.delete_device_profile(profile.id, now, sys()).await,
            Err(StoreError::Conflict(_))
        ));

        // Uplinks: stored once per deduplication id, newest first.
        let uplinks = f.stores.uplink_store(org).await.unwrap();
        let found = uplinks
            .device_by_dev_eui("0101010101010101")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.device_id, first);
        assert_eq!(
            uplinks.device_by_dev_eui("0202020202020202").await.unwrap(),
            None
        );
        let integration = Uuid::now_v7();
        for n in 0..5u8 {
            let event = NewUplinkEvent {
                device_id: first,
                received_at: now,
                f_port: i32::from(n),
                payload: vec![n],
                decoded: Some(json!({"data": {"n": n}})),
                decoder_error: None,
                integration_id: integration,
                dedup_id: Some(format!("uplink-{n}")),
            };
            assert!(uplinks.store_event(&event).await.unwrap());
            assert!(!uplinks.store_event(&event).await.unwrap(), "a redelivery");
        }
        let page = tenant.device_events(first, None, 3).await.unwrap();
        assert_eq!(page.iter().map(|e| e.f_port).collect::<Vec<_>>(), [4, 3, 2]);
        assert_eq!(page[0].decoded, Some(json!({"data": {"n": 4}})));
        let rest = tenant
            .device_events(first, Some(page[2].id), 3)
            .await
            .unwrap();
        assert_eq!(rest.iter().map(|e| e.f_port).collect::<Vec<_>>(), [1, 0]);
        assert!(
            tenant
                .device_events(second, None, 10)
                .await
                .unwrap()
                .is_empty()
        );
        f
    }
);

conformance!(
    broker_passwords_are_sealed_where_rotation_finds_them,
    |f: Fixture| async move {
        let (org, _) = enroll(&f, 1).await;
        let tenant = f.stores.tenants().open_existing(org).await.unwrap();
        let now = f.clock.now();
        let id = Uuid::now_v7();
        let new = NewIntegration {
            id,
            settings: IntegrationSettings {
                name: "ChirpStack".into(),
                host: "127.0.0.1".into(),
                port: 1883,
                tls: false,
                ca_pem: None,
                username: Some("sentinel".into()),
                topic: "application/+/device/+/event/up".into(),
                format: "chirpstack_v4".into(),
                enabled: true,
            },
            sealed_password: Some(b"sealed one".to_vec()),
        };
        let created = tenant.create_integration(&new, now, sys()).await.unwrap();
        assert!(created.has_password);
        let (action, detail) = newest_detail(&f, org).await;
        assert_eq!(action, "integration.created");
        assert!(!detail.to_string().contains("sealed"), "{detail}");
        assert_eq!(
            f.stores.enabled_integrations().await.unwrap(),
            vec![(org, id)]
        );

        let sealed = f.stores.sealed_values().await.unwrap();
        let value = sealed
            .iter()
            .find(|v| v.site == SealedSite::BrokerPassword(org, id))
            .unwrap();
        assert_eq!(value.sealed, b"sealed one");
        assert!(f.stores.replace_sealed(value, b"sealed two").await.unwrap());
        assert!(
            !f.stores
                .replace_sealed(value, b"sealed three")
                .await
                .unwrap()
        );
        let uplinks = f.stores.uplink_store(org).await.unwrap();
        assert_eq!(
            uplinks.integration(id).await.unwrap().1.as_deref(),
            Some(&b"sealed two"[..])
        );

        let change = |password| IntegrationChange {
            settings: IntegrationSettings {
                name: "ChirpStack".into(),
                host: "broker.example".into(),
                port: 8883,
                tls: true,
                ca_pem: None,
                username: None,
                topic: "application/#".into(),
                format: "chirpstack_v4".into(),
                enabled: false,
            },
            password,
        };
        tenant
            .update_integration(id, &change(PasswordChange::Keep), now, sys())
            .await
            .unwrap();
        assert_eq!(
            uplinks.integration(id).await.unwrap().1.as_deref(),
            Some(&b"sealed two"[..])
        );
        let cleared = tenant
            .update_integration(id, &change(PasswordChange::Clear), now, sys())
            .await
            .unwrap();
        assert!(!cleared.has_password && !cleared.enabled);
        assert!(f.stores.enabled_integrations().await.unwrap().is_empty());
        tenant.delete_integration(id, now, sys()).await.unwrap();
        assert!(matches!(
            tenant.integration(id).await,
            Err(StoreError::NotFound)
        ));
        f
    }
);
