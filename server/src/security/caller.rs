//! [`Caller`]: who makes a call, as the guard established it, and
//! [`ProjectScope`]: a project that caller may use. Every store method
//! takes a `ProjectScope`, and [`Caller::project`] is the only way to make
//! one, so no handler can forget the project check.

use std::collections::BTreeSet;
use std::fmt;

use super::tokens::Scope;
use crate::error::Error;
use crate::validate;

/// The project of a request that names none.
pub const DEFAULT_PROJECT: &str = "default";

/// The projects a token may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projects {
    /// Every project (`*`, or no restriction in the tokens file).
    All,
    /// Only these.
    Only(BTreeSet<String>),
}

impl Projects {
    /// Whether `project` is one of them.
    pub fn allows(&self, project: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(names) => names.contains(project),
        }
    }
}

impl fmt::Display for Projects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("*"),
            Self::Only(names) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

/// Who makes a call. The guard puts one into every request it lets
/// through (an anonymous one on a server without tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name; `None` on a server without tokens.
    pub token: Option<String>,
    /// What the caller may do.
    pub scope: Scope,
    /// Where the caller may do it.
    pub projects: Projects,
}

impl Caller {
    /// The caller of a server without tokens: anyone who can connect may
    /// read and write every project.
    pub fn anonymous() -> Self {
        Self {
            token: None,
            scope: Scope::Write,
            projects: Projects::All,
        }
    }

    /// The project a request names (`field`, empty meaning `default`), if
    /// it is a valid name this caller may use.
    pub fn project(&self, field: &str, requested: &str) -> Result<ProjectScope, Error> {
        let name = if requested.is_empty() {
            DEFAULT_PROJECT
        } else {
            validate::name(field, requested)?;
            requested
        };
        if !self.projects.allows(name) {
            return Err(Error::PermissionDenied(format!(
                "{field}: token {:?} may not use project {name:?} (it may use: {})",
                self.token.as_deref().unwrap_or(""),
                self.projects
            )));
        }
        Ok(ProjectScope {
            name: name.to_owned(),
        })
    }
}

/// A project that the caller of the request may use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectScope {
    name: String,
}

impl ProjectScope {
    /// The project's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_means_default_and_restrictions_apply() {
        let anyone = Caller::anonymous();
        assert_eq!(anyone.project("project", "").unwrap().name(), "default");
        assert_eq!(anyone.project("project", "vision").unwrap().name(), "vision");
        assert!(
            anyone
                .project("project", "a\u{0}b")
                .unwrap_err()
                .to_string()
                .starts_with("project: ")
        );
        let vision = Caller {
            token: Some("trainer".into()),
            scope: Scope::Write,
            projects: Projects::Only(["vision".to_owned()].into()),
        };
        assert!(vision.project("project", "vision").is_ok());
        let denied = vision.project("project", "nlp").unwrap_err();
        assert!(matches!(denied, Error::PermissionDenied(_)), "{denied:?}");
        let message = denied.to_string();
        assert!(
            message.contains("\"nlp\"") && message.contains("trainer"),
            "{message}"
        );
        assert!(
            vision.project("project", "").is_err(),
            "default is a project like any other"
        );
    }
}
