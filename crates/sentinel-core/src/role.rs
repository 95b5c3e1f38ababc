//! Tenant roles and the permissions they grant: the one place where that mapping
//! lives. Routes declare the [`Permission`] they need; nothing else asks for a role.
//!
//! The platform role (`platform_admin`) is separate: it manages users and
//! organizations but grants no permission inside any organization.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a member of an organization may be.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Debug,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TenantRole {
    Owner,
    Admin,
    Analyst,
    Readonly,
}

/// A named capability inside one organization.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Permission {
    /// See the organization and its overview.
    OrgRead,
    /// Rename the organization; grant, change or remove the owner role.
    OrgManage,
    /// See who is a member and with which role.
    MembersRead,
    /// Add members and change or remove non-owner members.
    MembersManage,
    /// Read and export the organization's audit log.
    AuditRead,
    /// See devices, their facts, telemetry, inventory and command history.
    DevicesRead,
    /// Create and revoke enrollment tokens; revoke devices.
    DevicesWrite,
    /// Queue and cancel commands on devices.
    CommandsRun,
    /// Make signed vulnerability reports for auditors.
    ReportsCreate,
}

impl Permission {
    pub const ALL: [Permission; 9] = [
        Permission::OrgRead,
        Permission::OrgManage,
        Permission::MembersRead,
        Permission::MembersManage,
        Permission::AuditRead,
        Permission::DevicesRead,
        Permission::DevicesWrite,
        Permission::CommandsRun,
        Permission::ReportsCreate,
    ];

    /// The stable dotted name used in the API, documentation and (later) tokens.
    pub fn name(self) -> &'static str {
        match self {
            Permission::OrgRead => "org.read",
            Permission::OrgManage => "org.manage",
            Permission::MembersRead => "members.read",
            Permission::MembersManage => "members.manage",
            Permission::AuditRead => "audit.read",
            Permission::DevicesRead => "devices.read",
            Permission::DevicesWrite => "devices.write",
            Permission::CommandsRun => "commands.run",
            Permission::ReportsCreate => "reports.create",
        }
    }
}

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownPermission(s.chars().take(64).collect()))
    }
}

/// A permission name that is not one of [`Permission::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission {0:?}")]
pub struct UnknownPermission(pub String);

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TenantRole {
    pub const ALL: [TenantRole; 4] = [
        TenantRole::Owner,
        TenantRole::Admin,
        TenantRole::Analyst,
        TenantRole::Readonly,
    ];

    /// The role → permission table.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            TenantRole::Owner => &[
                OrgRead,
                OrgManage,
                MembersRead,
                MembersManage,
                AuditRead,
                DevicesRead,
                DevicesWrite,
                CommandsRun,
                ReportsCreate,
            ],
            TenantRole::Admin => &[
                OrgRead,
                MembersRead,
                MembersManage,
                AuditRead,
                DevicesRead,
                DevicesWrite,
                CommandsRun,
                ReportsCreate,
            ],
            TenantRole::Analyst => &[OrgRead, MembersRead, AuditRead, DevicesRead, ReportsCreate],
            TenantRole::Readonly => &[OrgRead, MembersRead, DevicesRead],
        }
    }

    pub fn grants(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }

    /// May a member with this role move someone from role `from` (None: not yet a
    /// member) to role `to` (None: removed)? Managing members needs
    /// `members.manage`; anything that touches the owner role needs `org.manage`.
    pub fn may_change_membership(self, from: Option<TenantRole>, to: Option<TenantRole>) -> bool {
        let touches_owner = from == Some(TenantRole::Owner) || to == Some(TenantRole::Owner);
        self.grants(Permission::MembersManage)
            && (!touches_owner || self.grants(Permission::OrgManage))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TenantRole::Owner => "owner",
            TenantRole::Admin => "admin",
            TenantRole::Analyst => "analyst",
            TenantRole::Readonly => "readonly",
        }
    }
}

impl fmt::Display for TenantRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that is not one of the four role names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role (expected owner, admin, analyst or readonly)")]
pub struct UnknownRole;

impl FromStr for TenantRole {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TenantRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(UnknownRole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;
    use TenantRole::*;

    #[test]
    fn readonly_and_analyst_only_read() {
        for role in [Readonly, Analyst] {
            assert!(role.grants(OrgRead) && role.grants(MembersRead));
            assert!(!role.grants(MembersManage) && !role.grants(OrgManage));
        }
    }

    #[test]
    fn owner_holds_every_permission() {
        assert!(Permission::ALL.iter().all(|p| Owner.grants(*p)));
        assert!(!Admin.grants(OrgManage));
    }

    #[test]
    fn only_owners_touch_the_owner_role() {
        assert!(Admin.may_change_membership(None, Some(Analyst)));
        assert!(Admin.may_change_membership(Some(Readonly), Some(Admin)));
        assert!(!Admin.may_change_membership(None, Some(Owner)));
        assert!(!Admin.may_change_membership(Some(Owner), Some(Admin)));
        assert!(!Admin.may_change_membership(Some(Owner), None));
        assert!(Owner.may_change_membership(Some(Owner), Some(Readonly)));
        assert!(!Analyst.may_change_membership(None, Some(Readonly)));
        assert!(!Readonly.may_change_membership(Some(Readonly), None));
    }

    #[test]
    fn role_names_round_trip() {
        for role in TenantRole::ALL {
            assert_eq!(role.as_str().parse::<TenantRole>().unwrap(), role);
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{role}\""));
        }
        assert!("Owner".parse::<TenantRole>().is_err());
        assert!("root".parse::<TenantRole>().is_err());
    }
}
