//! Containment of redb's panics on damaged files.
//!
//! redb trusts its file: its documentation says a plain open "may panic" on a
//! file damaged outside redb, and its read paths do not verify page checksums
//! (a full check would read the whole file at every open). The store promises
//! typed errors instead, so every call into redb runs under [`Guard::run`],
//! which turns a panic into [`StoreError::Corrupt`] and retires the handle:
//! after a panic, redb's in-memory state (its locks, a half-done transaction)
//! is not trusted again, and every later call fails the same way until the
//! file is reopened. The process's panic hook still reports the panic (on
//! stderr by default); the caller gets an error, not an unwinding thread.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use synctree_primitives::StoreError;

/// The file a handle has open, and whether redb panicked on it.
#[derive(Debug)]
pub(super) struct Guard {
    path: PathBuf,
    retired: AtomicBool,
}

impl Guard {
    /// A guard for a handle on `path`.
    pub(super) fn new(path: &Path) -> Self {
        Guard {
            path: path.to_owned(),
            retired: AtomicBool::new(false),
        }
    }

    /// The database file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` (operation `op`), unless an earlier call panicked; a panic in
    /// `f` becomes [`StoreError::Corrupt`] and retires the handle.
    pub(super) fn run<T>(
        &self,
        op: &'static str,
        f: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.retired.load(Ordering::Acquire) {
            return Err(StoreError::Corrupt(format!(
                "{op} refused: redb panicked earlier on {}, which is damaged; reopen it",
                self.path.display()
            )));
        }
        match contain(op, &self.path, f) {
            Ok(result) => result,
            Err(panicked) => {
                self.retired.store(true, Ordering::Release);
                Err(panicked)
            }
        }
    }
}

/// Runs `f`; `Err` when it panicked (the panic as [`StoreError::Corrupt`]),
/// `Ok` with its own result otherwise.
pub(super) fn contain<T>(
    op: &'static str,
    path: &Path,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<Result<T, StoreError>, StoreError> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        StoreError::Corrupt(format!(
            "redb panicked during {op} on {} ({}): the file is damaged",
            path.display(),
            message(payload.as_ref())
        ))
    })
}

/// The text of a panic payload.
fn message(payload: &(dyn Any + Send)) -> &str {
    match payload.downcast_ref::<&str>() {
        Some(text) => text,
        None => payload
            .downcast_ref::<String>()
            .map_or("no message", String::as_str),
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)] // Tests fail by panicking.
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_corrupt_error_and_retires_the_handle() {
        let guard = Guard::new(Path::new("/nowhere/s.redb"));
        assert_eq!(guard.run("get", || Ok(7)).ok(), Some(7));
        let err = guard
            .run::<()>("range", || panic!("index out of range"))
            .expect_err("contained");
        let text = err.to_string();
        assert!(
            text.contains("range") && text.contains("index out of range"),
            "{text}"
        );
        let err = guard.run("get", || Ok(7)).expect_err("retired");
        assert!(matches!(err, StoreError::Corrupt(m) if m.contains("reopen")));
    }

    #[test]
    fn errors_pass_through_without_retiring() {
        let guard = Guard::new(Path::new("s.redb"));
        let err = guard.run::<()>("get", || Err(StoreError::Fault { op: "get" }));
        assert!(matches!(err, Err(StoreError::Fault { .. })));
        assert!(guard.run("get", || Ok(())).is_ok());
    }
}
