//! ebbctl's config file: named contexts (endpoint, token, CA), one of them current.
//! `ebb up` writes one for the local cluster so a newcomer needs no setup.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CtlConfig {
    pub current_context: String,
    #[serde(default)]
    pub contexts: Vec<Context>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    pub name: String,
    /// `http://host:port`, or `https://` with TLS.
    pub endpoint: String,
    pub token: String,
    /// PEM file of the CA that signed the server's certificate (https only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path} (run `ebb up`, or write a config: see `ebbctl --help`)")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("writing {path}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: no context named {name:?}")]
    NoContext { path: String, name: String },
}

/// `$EBBCTL_CONFIG`, else `~/.config/ebb/config.yaml`.
pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os("EBBCTL_CONFIG") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".config").join("ebb").join("config.yaml")
}

impl CtlConfig {
    pub fn load(path: &Path) -> Result<CtlConfig, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        serde_saphyr::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: shown,
            message: e.to_string(),
        })
    }

    /// The named context, or the current one.
    pub fn context(&self, name: Option<&str>, path: &Path) -> Result<&Context, ConfigError> {
        let name = name.unwrap_or(&self.current_context);
        self.contexts
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| ConfigError::NoContext {
                path: path.display().to_string(),
                name: name.to_string(),
            })
    }

    /// Adds or replaces `context`, makes it current, and writes the file (mode 0600:
    /// it holds a token).
    pub fn upsert(path: &Path, context: Context) -> Result<(), ConfigError> {
        let mut config = CtlConfig::load(path).unwrap_or_default();
        config.contexts.retain(|c| c.name != context.name);
        config.current_context = context.name.clone();
        config.contexts.push(context);
        let write_err = |source| ConfigError::Write {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let text = serde_saphyr::to_string(&config).map_err(|e| ConfigError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(write_err)?;
            f.write_all(text.as_bytes()).map_err(write_err)?;
        }
        std::fs::rename(&tmp, path).map_err(write_err)
    }
}
