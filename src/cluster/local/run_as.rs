//! Whose processes `ebb up`'s pods are. A pod runs the command its TrainingJob names;
//! when `ebb up` itself runs as root, running that command as root would hand every
//! user with a token root on the machine. So as root, pods run as an unprivileged user
//! (`nobody`, or `--run-as USER`), with that user's group and no supplementary groups,
//! in job directories it owns; `--run-as root` keeps root, with a warning. Not as root,
//! pods run as the user running `ebb up`, and naming anyone else is refused.

use std::path::Path;

/// The user pods run as, when it is not the one running `ebb up`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum RunAsError {
    #[error("--run-as {0}: no such user")]
    NoSuchUser(String),
    #[error("--run-as {user}: only root can run pods as another user (ebb up runs as {me})")]
    NotRoot { user: String, me: String },
    #[error("looking up user {user}: {source}")]
    Lookup { user: String, source: nix::Error },
    #[error("handing {path} to user {user}: {source}")]
    Chown {
        path: String,
        user: String,
        source: nix::Error,
    },
}

/// The default user of pods when `ebb up` runs as root.
pub const DEFAULT_USER: &str = "nobody";

/// Who pods run as, given `--run-as` (None: the default). `Ok(None)`: as `ebb up` itself.
pub fn resolve(requested: Option<&str>) -> Result<Option<RunAs>, RunAsError> {
    let me = nix::unistd::geteuid();
    if !me.is_root() {
        let my_name = nix::unistd::User::from_uid(me)
            .ok()
            .flatten()
            .map_or_else(|| me.to_string(), |u| u.name);
        return match requested {
            Some(user) if user != my_name => Err(RunAsError::NotRoot {
                user: user.to_string(),
                me: my_name,
            }),
            _ => Ok(None),
        };
    }
    let user = requested.unwrap_or(DEFAULT_USER);
    if user == "root" {
        tracing::warn!(
            "ebb up runs pods as root (--run-as root): every command a job names runs with root's rights"
        );
        return Ok(None);
    }
    let found = nix::unistd::User::from_name(user).map_err(|source| RunAsError::Lookup {
        user: user.to_string(),
        source,
    })?;
    let found = found.ok_or_else(|| RunAsError::NoSuchUser(user.to_string()))?;
    Ok(Some(RunAs {
        name: found.name,
        uid: found.uid.as_raw(),
        gid: found.gid.as_raw(),
    }))
}

impl RunAs {
    /// Makes `dir` (created by `ebb up`) the pods' own, so that their journals,
    /// checkpoints, models and address files can be written there.
    pub fn own(&self, dir: &Path) -> Result<(), RunAsError> {
        nix::unistd::chown(
            dir,
            Some(nix::unistd::Uid::from_raw(self.uid)),
            Some(nix::unistd::Gid::from_raw(self.gid)),
        )
        .map_err(|source| RunAsError::Chown {
            path: dir.display().to_string(),
            user: self.name.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_defaults_to_nobody_and_others_cannot_pick_a_user() {
        if nix::unistd::geteuid().is_root() {
            let r = resolve(None).unwrap().expect("not root by default");
            assert_eq!(r.name, DEFAULT_USER);
            assert_ne!(r.uid, 0);
            assert_eq!(resolve(Some("root")).unwrap(), None, "root only when asked");
            assert!(matches!(
                resolve(Some("no-such-user-here")),
                Err(RunAsError::NoSuchUser(_))
            ));
        } else {
            assert_eq!(resolve(None).unwrap(), None);
            assert!(matches!(
                resolve(Some("root")),
                Err(RunAsError::NotRoot { .. })
            ));
        }
    }
}
