//! Scratch directories for tests that run real processes.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::ops::Deref;
use std::path::Path;

/// A fresh directory under the system's temporary one, named after the test. Removed
/// when dropped if the test passed; kept, and named on standard error, if it is failing,
/// so that the processes' logs in it can be read.
pub struct Scratch(tempfile::TempDir);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(&format!("ebb-{name}-"))
            .tempdir()
            .expect("a scratch directory");
        Scratch(dir)
    }
}

impl Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<OsStr> for Scratch {
    fn as_ref(&self) -> &OsStr {
        self.0.path().as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.disable_cleanup(true);
            eprintln!("kept {} for a look", self.0.path().display());
        }
    }
}
