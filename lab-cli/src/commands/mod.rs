//! The subcommands, one file each: parse → measure → present.
pub mod args;
pub mod bench;
pub mod compare;
pub mod soak;
pub mod top;
pub mod trace;
