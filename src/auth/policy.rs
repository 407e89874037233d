//! The one place that decides who may do what. Handlers ask; they never compare roles.

use super::Role;

/// Something a request wants to do inside a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantAction {
    /// Read anything of the tenant (viewer and up).
    Read,
    /// Work with agents, tasks, messages and board items (member and up).
    Work,
    /// Change settings, providers, members and tokens (admin and up).
    Administer,
    /// Grant, change or remove the owner role (owners only).
    ManageOwners,
}

impl TenantAction {
    /// The lowest role allowed to do this.
    pub fn minimum_role(self) -> Role {
        match self {
            TenantAction::Read => Role::Viewer,
            TenantAction::Work => Role::Member,
            TenantAction::Administer => Role::Admin,
            TenantAction::ManageOwners => Role::Owner,
        }
    }
}

/// Whether `role` may do `action` in its tenant.
pub fn allows(role: Role, action: TenantAction) -> bool {
    role >= action.minimum_role()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_the_contract_says() {
        use TenantAction::*;
        let table = [
            (Role::Viewer, [true, false, false, false]),
            (Role::Member, [true, true, false, false]),
            (Role::Admin, [true, true, true, false]),
            (Role::Owner, [true, true, true, true]),
        ];
        for (role, expected) in table {
            for (action, allowed) in [Read, Work, Administer, ManageOwners]
                .into_iter()
                .zip(expected)
            {
                assert_eq!(allows(role, action), allowed, "{role} {action:?}");
            }
        }
    }
}
