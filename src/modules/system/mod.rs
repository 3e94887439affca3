//! System modules: facts, services, cron, accounts, host settings.

pub mod alternatives;
pub mod authorized_key;
pub mod cron;
pub mod export_list;
pub mod getent;
pub mod group;
pub mod hostname;
pub mod modprobe;
pub mod mount;
pub mod service;
pub mod service_facts;
pub mod setup;
pub mod setup_subset;
pub mod setup_virtual;
pub mod sysctl;
pub mod timezone;
pub mod user;
