//! `kiln inventory`: ansible-inventory's `--list` (JSON) and `--graph`.

use std::path::PathBuf;

use clap::Args;

use crate::load::config::AnsibleConfig;
use crate::load::inventory::Inventory;

#[derive(Debug, Args, Clone)]
pub struct InventoryArgs {
    #[arg(short = 'i', long = "inventory", visible_alias = "inventory-file")]
    pub inventory: Vec<String>,
    /// Print every group and host with variables as JSON.
    #[arg(long)]
    pub list: bool,
    /// Print the group tree, from GROUP (default: all).
    #[arg(long, num_args = 0..=1, default_missing_value = "all")]
    pub graph: Option<String>,
    /// One host's variables as JSON.
    #[arg(long)]
    pub host: Option<String>,
    /// Passwords for vaulted inventory and vars files (inline values stay encrypted).
    #[command(flatten)]
    pub vault: super::vault::PasswordArgs,
}

pub fn run(args: InventoryArgs) -> anyhow::Result<i32> {
    let config = AnsibleConfig::discover();
    crate::vault::show_ciphertext();
    super::vault::install_run_keyring(&args.vault, &config)?;
    let sources: Vec<PathBuf> = if args.inventory.is_empty() {
        config.inventory.clone()
    } else {
        args.inventory.iter().map(PathBuf::from).collect()
    };
    let inventory = Inventory::load(&sources)?;
    if let Some(group) = &args.graph {
        print!("{}", inventory.to_graph(group));
    } else if let Some(host) = &args.host {
        let vars = inventory.host_vars(host)?;
        let json = crate::template::filters::to_json_value(&crate::template::map_value(vars));
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&inventory.to_list_json()?)?
        );
    }
    Ok(0)
}
