//! Baking images: the spec, the cleanup stack every builder pushes its undos on, the local
//! builder (systemd-nspawn instances, a local image store) and the build manifest. The CLI
//! (`cli/bake.rs`) drives a build and provisions the instance with the playbook engine.

pub mod aws;
pub mod cleanup;
pub mod images;
pub mod local;
pub mod manifest;
pub mod proxy;
pub mod spec;
