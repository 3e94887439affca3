//! An EC2 fleet: instances launched from an AMI, tagged `kiln:fleet=<name>` and
//! `kiln:image=<ami>`, found again by those tags (no local records: EC2 is the record).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::types::{
    Filter, InstanceStateName, InstanceType, ResourceType, Tag, TagSpecification,
};
use aws_sdk_ec2::Client;

use super::fleet::Member;

pub const FLEET_TAG: &str = "kiln:fleet";
pub const IMAGE_TAG: &str = "kiln:image";

pub struct Ec2Fleet {
    pub ec2: Client,
    pub name: String,
    pub instance_type: String,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    pub key_name: Option<String>,
    pub tags: BTreeMap<String, String>,
}

use super::spec::ami_id;

#[async_trait::async_trait]
impl super::Fleet for Ec2Fleet {
    async fn members(&self) -> anyhow::Result<Vec<Member>> {
        let out = self
            .ec2
            .describe_instances()
            .filters(
                Filter::builder()
                    .name(format!("tag:{FLEET_TAG}"))
                    .values(&self.name)
                    .build(),
            )
            .send()
            .await
            .context("DescribeInstances")?;
        let mut members: Vec<Member> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| {
                matches!(
                    i.state().and_then(|s| s.name()),
                    Some(InstanceStateName::Pending) | Some(InstanceStateName::Running)
                )
            })
            .map(|i| Member {
                id: i.instance_id().unwrap_or_default().to_string(),
                address: i.private_ip_address().unwrap_or_default().to_string(),
                image: i.image_id().unwrap_or_default().to_string(),
                created: i.launch_time().map(|t| t.secs()).unwrap_or(0),
            })
            .collect();
        members.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(members)
    }

    async fn launch(&self, image: &str) -> anyhow::Result<Member> {
        let ami = ami_id(image);
        let mut tags: Vec<Tag> = self
            .tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        tags.push(Tag::builder().key(FLEET_TAG).value(&self.name).build());
        tags.push(Tag::builder().key(IMAGE_TAG).value(ami).build());
        // Spread instances over the subnets.
        let existing = self.members().await?.len();
        let subnet = (!self.subnet_ids.is_empty())
            .then(|| self.subnet_ids[existing % self.subnet_ids.len()].clone());
        let out = self
            .ec2
            .run_instances()
            .image_id(ami)
            .instance_type(InstanceType::from(self.instance_type.as_str()))
            .min_count(1)
            .max_count(1)
            .set_subnet_id(subnet)
            .set_security_group_ids(
                (!self.security_group_ids.is_empty()).then(|| self.security_group_ids.clone()),
            )
            .set_key_name(self.key_name.clone())
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .set_tags(Some(tags))
                    .build(),
            )
            .send()
            .await
            .context("RunInstances")?;
        let instance = out
            .instances()
            .first()
            .context("RunInstances returned no instance")?;
        let id = instance.instance_id().unwrap_or_default().to_string();
        self.ec2
            .wait_until_instance_running()
            .instance_ids(&id)
            .wait(Duration::from_secs(600))
            .await
            .with_context(|| format!("waiting for {id} to run"))?;
        Ok(Member {
            id,
            address: instance
                .private_ip_address()
                .unwrap_or_default()
                .to_string(),
            image: ami.to_string(),
            created: crate::clock::epoch_seconds(),
        })
    }

    async fn destroy(&self, member: &Member) -> anyhow::Result<()> {
        crate::bake::aws::terminate_instance(self.ec2.clone(), member.id.clone()).await
    }

    fn checks_directly(&self) -> bool {
        false
    }
}
