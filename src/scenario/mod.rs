//! `kiln test`: a role's Molecule scenarios (`molecule/<name>/molecule.yml`) run unchanged on
//! local throwaway instances. `spec.rs` reads the scenario, `role.rs` puts the role on the
//! roles path under its names, `instances.rs` boots and records the platforms' instances,
//! `changes.rs` names what a second converge changed, `sequence.rs` runs the stages.

pub mod changes;
pub mod instances;
pub mod role;
pub mod sequence;
pub mod spec;
