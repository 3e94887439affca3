//! Control modules that mostly talk to the run itself: debug, assert, fail, ping, wait_for.

pub mod assert;
pub mod debug;
pub mod fail;
pub mod pause;
pub mod ping;
pub mod wait_for;
