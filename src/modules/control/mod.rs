//! Control modules that mostly talk to the run itself: debug, assert, fail, ping, wait_for,
//! wait_for_connection.

pub mod assert;
pub mod debug;
pub mod fail;
pub mod pause;
pub mod ping;
pub mod wait_for;
pub mod wait_for_connection;
