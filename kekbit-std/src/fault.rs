//! Failures injected into file-system steps, for this crate's tests only.
//!
//! Some steps cannot be made to fail on demand on a real file system (an
//! `fsync` of a folder returning `EIO`, say), yet what the code does after
//! such a failure matters. The unit tests arm a step here to make its next
//! [`check`] fail; the real system call is then skipped. Outside
//! `cfg(test)`, [`check`] is `Ok(())` and compiles to nothing.

use std::io;

/// A step that a test can make fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The `fsync` of a folder whose entry names a new channel.
    FolderSync,
    /// The removal of a new channel's name after a failed folder sync.
    Unpublish,
    /// A journal sync's write-back of a segment.
    JournalSync,
}

/// Fails with `EIO` if the running test armed `step` on this thread;
/// each arming fails one check.
#[inline]
pub(crate) fn check(step: Step) -> io::Result<()> {
    #[cfg(test)]
    if armed::take(step) {
        return Err(io::Error::from_raw_os_error(libc::EIO));
    }
    let _ = step;
    Ok(())
}

/// The steps armed by the test running on this thread. Thread-local, so
/// tests that run in parallel never see each other's faults.
#[cfg(test)]
pub(crate) mod armed {
    use std::cell::RefCell;

    use super::Step;

    thread_local! {
        static STEPS: RefCell<Vec<Step>> = const { RefCell::new(Vec::new()) };
    }

    /// Makes the next check of `step` on this thread fail.
    pub(crate) fn arm(step: Step) {
        STEPS.with(|steps| steps.borrow_mut().push(step));
    }

    /// Whether `step` was armed, disarming it.
    pub(super) fn take(step: Step) -> bool {
        STEPS.with(|steps| {
            let mut steps = steps.borrow_mut();
            match steps.iter().position(|&s| s == step) {
                Some(i) => {
                    steps.remove(i);
                    true
                }
                None => false,
            }
        })
    }

    /// Whether every armed step has fired: a test that armed a step the
    /// code never reached proves nothing.
    pub(crate) fn all_fired() -> bool {
        STEPS.with(|steps| steps.borrow().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_armed_step_fails_once_and_only_on_its_thread() {
        assert!(check(Step::FolderSync).is_ok());
        armed::arm(Step::FolderSync);
        assert!(!armed::all_fired());
        std::thread::spawn(|| assert!(check(Step::FolderSync).is_ok()))
            .join()
            .unwrap();
        let err = check(Step::FolderSync).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO));
        assert!(armed::all_fired());
        assert!(check(Step::FolderSync).is_ok());
    }
}
