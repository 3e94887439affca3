//! Modules that reach other machines from the target: `git` (a working copy from a remote)
//! and `uri` (an HTTP request with the target's curl).

pub mod git;
pub mod uri;
