//! Baking images: the spec, the builders behind one trait (`build.rs`; `build_local.rs` on
//! systemd-nspawn instances and a local image store, `build_ebs.rs` on EC2), the cleanup
//! stack every builder pushes its undos on, provisioning through the playbook engine's entry
//! point, the build manifest, and the provenance each image records (what it was baked from). The CLI only parses arguments into `BakeOptions`.

#[cfg(feature = "aws")]
pub mod aws;
pub mod build;
#[cfg(feature = "aws")]
pub mod build_ebs;
pub mod build_local;
pub mod cleanup;
pub mod images;
pub mod local;
pub mod manifest;
pub mod provenance;
pub mod provision;
pub mod proxy;
pub mod spec;

/// The error for an AWS feature in a kiln built without the `aws` cargo feature.
#[cfg(not(feature = "aws"))]
pub fn aws_unavailable(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} needs AWS, and this kiln was built without it: rebuild it with the `aws` \
         feature (`cargo install --path . --features aws`)"
    )
}
