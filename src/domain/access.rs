//! Who may see and change what. Every path that can reveal a position asks here.

use super::value::string_enum;
use super::{Collection, Record};

string_enum! {
    /// The role a bearer token grants.
    Role, "role" {
        Operator => "operator",
        Editor => "editor",
        Admin => "admin",
    }
}

/// The caller of a request: anonymous, or the holder of a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    Token {
        /// The token's id (never its secret).
        id: i64,
        name: String,
        role: Role,
    },
}

/// Why an access was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("authentication required: {0} is restricted to authorised roles")]
    Unauthenticated(String),
    #[error("the role `{role}` may not {action}")]
    Forbidden { role: Role, action: String },
}

impl Principal {
    pub fn role(&self) -> Option<Role> {
        match self {
            Principal::Anonymous => None,
            Principal::Token { role, .. } => Some(*role),
        }
    }

    /// A name for logs and the audit trail.
    pub fn actor(&self) -> String {
        match self {
            Principal::Anonymous => "anonymous".to_owned(),
            Principal::Token { id, name, role } => format!("{name} ({role}, token {id})"),
        }
    }

    /// Whether the caller may read restricted collections and confidential positions.
    pub fn is_authorised_reader(&self) -> bool {
        self.role().is_some()
    }

    /// May the caller list or fetch from `collection` at all?
    pub fn check_read(&self, collection: Collection) -> Result<(), AccessError> {
        if collection.is_restricted() && !self.is_authorised_reader() {
            return Err(AccessError::Unauthenticated(format!(
                "the collection `{collection}`"
            )));
        }
        Ok(())
    }

    /// May the caller see this record (and so its position)? Anonymous callers never see a
    /// settlement, a worksite or a confidential service.
    pub fn can_see(&self, record: &Record) -> bool {
        self.is_authorised_reader()
            || (!record.collection().is_restricted() && !record.is_confidential())
    }

    /// May the caller create, change or delete records?
    pub fn check_write(&self, collection: Collection) -> Result<(), AccessError> {
        match self.role() {
            None => Err(AccessError::Unauthenticated(format!(
                "writing to `{collection}`"
            ))),
            Some(Role::Editor | Role::Admin) => Ok(()),
            Some(role) => Err(AccessError::Forbidden {
                role,
                action: format!("write to `{collection}`"),
            }),
        }
    }
}
