//! Bearer tokens mapped to a role and the namespaces they may see, from the server's
//! config file.

use serde::{Deserialize, Serialize};
use tonic::{Status, metadata::MetadataMap};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Submits and manages jobs in its namespaces.
    User,
    /// Also sets queues.
    Operator,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub token: String,
    /// Who this is, for logs.
    pub name: String,
    pub role: Role,
    /// Namespaces this token may see and touch; `"*"` is every namespace.
    pub namespaces: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub tokens: Vec<TokenEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("reading {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl AuthConfig {
    pub fn load(path: &std::path::Path) -> Result<AuthConfig, AuthConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| AuthConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let config: AuthConfig =
            serde_saphyr::from_str(&text).map_err(|e| AuthConfigError::Invalid {
                path: shown.clone(),
                message: e.to_string(),
            })?;
        for (i, t) in config.tokens.iter().enumerate() {
            if t.token.len() < 16 {
                return Err(AuthConfigError::Invalid {
                    path: shown,
                    message: format!("tokens[{i}].token: use at least 16 characters"),
                });
            }
        }
        Ok(config)
    }

    /// Who sent `metadata`: UNAUTHENTICATED without a known bearer token.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Principal, Status> {
        let header = metadata
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing `authorization: Bearer TOKEN`"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization is not `Bearer TOKEN`"))?;
        self.tokens
            .iter()
            .find(|t| same(t.token.as_bytes(), token.as_bytes()))
            .map(|t| Principal {
                name: t.name.clone(),
                role: t.role,
                namespaces: t.namespaces.clone(),
            })
            .ok_or_else(|| Status::unauthenticated("unknown token"))
    }
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    pub namespaces: Vec<String>,
}

impl Principal {
    pub fn sees(&self, namespace: &str) -> bool {
        self.namespaces.iter().any(|n| n == "*" || n == namespace)
    }

    pub fn check_namespace(&self, namespace: &str) -> Result<(), Status> {
        if self.sees(namespace) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "{} may not use namespace {namespace:?}",
                self.name
            )))
        }
    }

    pub fn check_operator(&self) -> Result<(), Status> {
        match self.role {
            Role::Operator => Ok(()),
            Role::User => Err(Status::permission_denied(format!(
                "{} is a user; only operators change queues",
                self.name
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AuthConfig {
        AuthConfig {
            tokens: vec![TokenEntry {
                token: "alice-token-0123456789".into(),
                name: "alice".into(),
                role: Role::User,
                namespaces: vec!["team-a".into()],
            }],
        }
    }

    fn with(header: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", header.parse().unwrap());
        m
    }

    #[test]
    fn tokens_roles_and_namespaces() {
        let c = config();
        let alice = c
            .authenticate(&with("Bearer alice-token-0123456789"))
            .unwrap();
        assert!(alice.check_namespace("team-a").is_ok());
        let denied = alice.check_namespace("team-b").unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            alice.check_operator().unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        for bad in [
            "Bearer nope",
            "alice-token-0123456789",
            "Bearer alice-token-012345678",
        ] {
            let e = c.authenticate(&with(bad)).unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unauthenticated, "{bad}");
        }
        assert_eq!(
            c.authenticate(&MetadataMap::new()).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
    }
}
