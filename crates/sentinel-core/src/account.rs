//! A new account as someone asked for it: a valid e-mail address, a display name
//! and a password that meets the policy given both. The one place that validates
//! what the setup page, the admin API and `sentinel admin create-user` accept.

use crate::email::Email;
use crate::names::DisplayName;
use crate::password::{Password, PasswordPolicy};
use crate::validation::ValidationError;

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: Email,
    pub name: DisplayName,
    pub password: Password,
}

impl NewAccount {
    /// Validates the three inputs; the password must not be built from the other two.
    pub fn parse(
        email: &str,
        name: &str,
        password: &str,
        policy: &PasswordPolicy,
    ) -> Result<Self, ValidationError> {
        let email = Email::parse(email)?;
        let name = DisplayName::parse(name)?;
        let password = policy.check(password, &[email.as_str(), name.as_str()])?;
        Ok(Self {
            email,
            name,
            password,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_input_is_checked_and_named() {
        let policy = PasswordPolicy::default();
        let ok = NewAccount::parse(
            " Ada@Example.org ",
            "Ada",
            "velvet orbit quarry lantern",
            &policy,
        )
        .unwrap();
        assert_eq!(ok.email.as_str(), "ada@example.org");
        let field =
            |e: &str, n: &str, p: &str| NewAccount::parse(e, n, p, &policy).unwrap_err().field;
        assert_eq!(field("nope", "Ada", "velvet orbit quarry lantern"), "email");
        assert_eq!(
            field("ada@example.org", " ", "velvet orbit quarry lantern"),
            "name"
        );
        assert_eq!(field("ada@example.org", "Ada", "short"), "password");
    }

    #[test]
    fn the_password_may_not_be_made_of_the_account() {
        let policy = PasswordPolicy::default();
        let e = NewAccount::parse(
            "quaxwortel@example.org",
            "Zbigniew",
            "Quaxwortel2026!",
            &policy,
        );
        assert_eq!(e.unwrap_err().field, "password");
    }
}
