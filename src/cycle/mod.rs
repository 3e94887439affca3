//! Rolling a fleet from one image to another behind a load balancer: the spec, HAProxy's
//! runtime API, the local fleet, and the rollout itself (`rollout.rs`), driven by
//! `cli/cycle.rs`.

pub mod fleet;
pub mod haproxy;
pub mod rollout;
pub mod spec;
