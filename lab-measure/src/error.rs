//! Input the user can fix: one line naming what is wrong and how to fix it, and exit status 2.
//!
//! Any layer may return [`BadInput`] (an unknown model, a path that cannot be created, missing
//! privileges…); `main` prints it as one line and exits with status 2, like clap's own checks.

/// An error the user can fix by changing the command line or the machine.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// `Err(BadInput)` with a formatted message.
#[macro_export]
macro_rules! bad_input {
    ($($arg:tt)*) => { return Err($crate::error::BadInput(format!($($arg)*)).into()) };
}
