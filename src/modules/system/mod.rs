//! System modules: setup (facts).

pub mod setup;
