//! kiln: an Ansible-compatible, agentless provisioner and image baker.
//!
//! Data flows one way: `cli` → `load` (YAML → typed model) → `run` (plays, hosts, tasks) →
//! `modules` (plan, then apply) → `connection`. `template` and `output` serve the layers.

pub mod bake;
pub mod cli;
pub mod clock;
pub mod connection;
pub mod cycle;
pub mod drift;
pub mod error;
pub mod load;
pub mod modules;
pub mod output;
pub mod run;
pub mod scenario;
pub mod shell;
pub mod template;
pub mod util;
pub mod value;
pub mod vault;
pub mod yaml;
