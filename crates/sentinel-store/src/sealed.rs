//! Every value sealed under the master key, where it lives and the context it
//! is sealed for — the one place those contexts are named — so that rotating
//! the master key can open each value with the old key and seal it with the
//! new one. A value is replaced only if it has not changed since it was read.

use sentinel_core::{OrgId, UserId};
use uuid::Uuid;

use crate::backend::{with_db, with_tx};
use crate::{StoreError, Stores};

/// Where a sealed value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedSite {
    /// A user's TOTP secret (control store).
    TwoFactorSecret(UserId),
    /// An organization's command-signing private key (its tenant store).
    CommandKey(OrgId),
    /// The password of an organization's external MQTT broker connection
    /// (its tenant store, `integrations`).
    BrokerPassword(OrgId, Uuid),
}

impl SealedSite {
    /// The context the value is bound to: a value copied to another site does
    /// not open.
    pub fn context(&self) -> String {
        match self {
            SealedSite::TwoFactorSecret(user) => format!("user:{user}/totp"),
            SealedSite::CommandKey(org) => format!("org:{org}/command-key"),
            SealedSite::BrokerPassword(org, integration) => {
                format!("org:{org}/integration:{integration}/password")
            }
        }
    }
}

/// One sealed value, as read.
#[derive(Debug, Clone)]
pub struct SealedValue {
    pub site: SealedSite,
    pub sealed: Vec<u8>,
}

impl Stores {
    /// Every sealed value in the control store and in every organization's
    /// tenant store.
    pub async fn sealed_values(&self) -> Result<Vec<SealedValue>, StoreError> {
        let secrets: Vec<(UserId, Vec<u8>)> = with_db!(self.control().db(), p =>
            sqlx::query_as("SELECT user_id, sealed_secret FROM user_two_factor ORDER BY user_id")
                .fetch_all(p)
                .await
        )?;
        let mut values: Vec<SealedValue> = secrets
            .into_iter()
            .map(|(user, sealed)| SealedValue {
                site: SealedSite::TwoFactorSecret(user),
                sealed,
            })
            .collect();
        for org in self.control().all_organizations().await? {
            let store = self.tenants().open_existing(org.id).await?;
            let mut tx = store.read().await?;
            let key: Option<Vec<u8>> = with_tx!(&mut tx, c =>
                sqlx::query_scalar("SELECT sealed_private_key FROM org_keys WHERE purpose = 'command_signing'")
                    .fetch_optional(c)
                    .await
            )?;
            let passwords: Vec<(Uuid, Vec<u8>)> = with_tx!(&mut tx, c =>
                sqlx::query_as(
                    "SELECT id, sealed_password FROM integrations
                     WHERE sealed_password IS NOT NULL ORDER BY id",
                )
                .fetch_all(c)
                .await
            )?;
            tx.commit().await?;
            values.extend(key.map(|sealed| SealedValue {
                site: SealedSite::CommandKey(org.id),
                sealed,
            }));
            values.extend(passwords.into_iter().map(|(id, sealed)| SealedValue {
                site: SealedSite::BrokerPassword(org.id, id),
                sealed,
            }));
        }
        Ok(values)
    }

    /// Replaces `value` with `resealed`, unless it changed since it was read.
    /// Returns whether it was replaced.
    pub async fn replace_sealed(
        &self,
        value: &SealedValue,
        resealed: &[u8],
    ) -> Result<bool, StoreError> {
        let done = match value.site {
            SealedSite::TwoFactorSecret(user) => {
                let mut tx = self.control().db().begin().await?;
                let done = with_tx!(&mut tx, c =>
                    sqlx::query("UPDATE user_two_factor SET sealed_secret = $1 WHERE user_id = $2 AND sealed_secret = $3")
                        .bind(resealed)
                        .bind(user)
                        .bind(&value.sealed)
                        .execute(c)
                        .await
                        .map(|r| r.rows_affected())
                )?;
                tx.commit().await?;
                done
            }
            SealedSite::CommandKey(org) => {
                let store = self.tenants().open_existing(org).await?;
                let mut tx = store.begin().await?;
                let done = with_tx!(&mut tx, c =>
                    sqlx::query(
                        "UPDATE org_keys SET sealed_private_key = $1
                         WHERE purpose = 'command_signing' AND sealed_private_key = $2",
                    )
                    .bind(resealed)
                    .bind(&value.sealed)
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected())
                )?;
                tx.commit().await?;
                done
            }
            SealedSite::BrokerPassword(org, integration) => {
                let store = self.tenants().open_existing(org).await?;
                let mut tx = store.begin().await?;
                let done = with_tx!(&mut tx, c =>
                    sqlx::query(
                        "UPDATE integrations SET sealed_password = $1
                         WHERE id = $2 AND sealed_password = $3",
                    )
                    .bind(resealed)
                    .bind(integration)
                    .bind(&value.sealed)
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected())
                )?;
                tx.commit().await?;
                done
            }
        };
        Ok(done == 1)
    }
}
