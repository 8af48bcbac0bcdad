//! Who may see and change what. Every path that can reveal a position asks here.

use super::value::string_enum;
use super::{Collection, Record, RecordId};

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
        /// The territories (ids) the token is scoped to; empty: the whole network. Admins
        /// are never scoped.
        territories: Vec<RecordId>,
    },
}

/// Whether anyone may see `record` and its position: a service that is not confidential, or
/// a territory.
pub fn is_public(record: &Record) -> bool {
    !record.collection().is_restricted() && !record.is_confidential()
}

/// Why an access was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("authentication required: {0} is restricted to authorised roles")]
    Unauthenticated(String),
    #[error("the role `{role}` may not {action}")]
    Forbidden { role: Role, action: String },
    /// A scoped token reached past its territories (the message names the record, never a
    /// position).
    #[error("{0} is outside the territories of this token")]
    OutOfScope(String),
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
            Principal::Token { id, name, role, .. } => format!("{name} ({role}, token {id})"),
        }
    }

    /// Whether the caller may read restricted collections and confidential positions (in its
    /// territories, when it is scoped: see [`Principal::scope`]).
    pub fn is_authorised_reader(&self) -> bool {
        self.role().is_some()
    }

    /// The territories the caller is confined to: `None` for the whole network (admins, and
    /// tokens without territories) and for anonymous callers, who see no restricted record
    /// anywhere.
    pub fn scope(&self) -> Option<&[RecordId]> {
        match self {
            Principal::Token {
                role, territories, ..
            } if *role != Role::Admin && !territories.is_empty() => Some(territories),
            _ => None,
        }
    }

    /// The token's id, if any (for the audit trail).
    pub fn token_id(&self) -> Option<i64> {
        match self {
            Principal::Anonymous => None,
            Principal::Token { id, .. } => Some(*id),
        }
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

    /// May a caller of the whole network see this record? Anonymous callers never see a
    /// settlement, a worksite or a confidential service. (A scoped caller's answer depends on
    /// where the record is: ask `index::query::View::can_see`.)
    pub fn can_see(&self, record: &Record) -> bool {
        (self.is_authorised_reader() && self.scope().is_none()) || is_public(record)
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
