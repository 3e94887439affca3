//! Modules that reach other machines from the target: `git` (a working copy from a remote).

pub mod git;
