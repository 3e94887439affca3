//! `kiln images` (list local images) and `kiln images rm REF`.

use clap::{Args, Subcommand};

use crate::bake::images::ImageStore;
use crate::bake::local;
use crate::clock;

#[derive(Debug, Args, Clone)]
pub struct ImagesArgs {
    #[command(subcommand)]
    pub command: Option<ImagesCommand>,
}

#[derive(Debug, Subcommand, Clone)]
pub enum ImagesCommand {
    /// Remove a local image (by `local:<id>`, id prefix or name).
    Rm { reference: String },
}

pub fn run(args: ImagesArgs) -> anyhow::Result<i32> {
    let store = ImageStore::open(&local::home());
    match args.command {
        Some(ImagesCommand::Rm { reference }) => {
            let image = store.remove(&reference)?;
            println!("removed {} ({})", image.artifact_id(), image.name);
        }
        None => {
            println!(
                "{:<14} {:<32} {:<14} {:<37} TAGS",
                "ID", "NAME", "PARENT", "CREATED"
            );
            let now = clock::epoch_seconds();
            for image in store.list()? {
                let tags: Vec<String> = image
                    .tags
                    .iter()
                    .filter(|(k, _)| !k.starts_with("kiln:"))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let created = format!(
                    "{} ({})",
                    clock::UtcTime::from_epoch(image.created).human(),
                    clock::age(now - image.created)
                );
                println!(
                    "{:<14} {:<32} {:<14} {:<37} {}",
                    image.id,
                    image.name,
                    image.parent.as_deref().unwrap_or("-"),
                    created,
                    tags.join(",")
                );
            }
        }
    }
    Ok(0)
}
