//! System modules: facts, services, cron, accounts, host settings.

pub mod alternatives;
pub mod authorized_key;
pub mod cron;
pub mod export_list;
pub mod getent;
pub mod group;
pub mod hostname;
pub mod iptables;
pub mod known_hosts;
pub mod locale_gen;
pub mod modprobe;
pub mod mount;
pub mod reboot;
pub mod service;
pub mod service_facts;
pub mod setup;
pub mod setup_subset;
pub mod setup_virtual;
pub mod sysctl;
pub mod timezone;
pub mod ufw;
pub mod user;
