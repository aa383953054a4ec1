//! Ownership tags of every tagged kind in one read: the Resource Groups Tagging API's
//! `GetResources`, filtered on `ballast.dev/blueprint = <metadata.name>` and on the resource types
//! whose own APIs need one tag read per resource (KMS keys, SQS queues, DynamoDB tables,
//! CloudWatch alarms, SNS topics). EC2 and Auto Scaling describes return tags already.
//!
//! The tagging API is eventually consistent on AWS: a resource created or tagged moments ago can be
//! missing from its answer for a while, and it lists only this blueprint's resources. So a
//! resource the snapshot lists is owned, with exactly the tags listed; one it does not list is
//! *not* thereby unowned: [`tags_or_read`] falls back to the resource's own tag read, which tells
//! a freshly created resource of ours from someone else's resource of the same name. An in-sync
//! stack therefore costs no per-resource tag reads.

use std::collections::BTreeMap;
use std::future::Future;

use aws_sdk_resourcegroupstagging::types::TagFilter;
use ballast_aws::SdkResultExt;
use ballast_blueprint::{
    Blueprint, OWNERSHIP_BLUEPRINT_TAG, ResourceId, ResourceKind, Tags, declared,
};
use tracing::{debug, instrument};

use super::context::ReadOnlyClients;
use super::error::ProvisionError;

/// The kinds whose tags the snapshot carries, with their tagging-API resource types, in registry
/// order (the registry's `tagging` column). The first is also what a failed `GetResources` of a
/// blueprint without any of these kinds is reported against (`error_resource`).
pub fn resource_types() -> impl Iterator<Item = (ResourceKind, &'static str)> {
    ResourceKind::ALL
        .iter()
        .filter_map(|kind| Some((*kind, kind.tagging_type()?)))
}

/// GetResources' largest page.
const RESOURCES_PER_PAGE: i32 = 100;

/// What `GetResources` listed with this blueprint's ownership tag: every tag, by ARN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagSnapshot {
    by_arn: BTreeMap<String, Tags>,
}

impl TagSnapshot {
    pub fn new(resources: impl IntoIterator<Item = (String, Tags)>) -> Self {
        Self {
            by_arn: resources.into_iter().collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.by_arn.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_arn.is_empty()
    }

    pub fn tags(&self, arn: &str) -> Option<&Tags> {
        self.by_arn.get(arn)
    }

    /// Listed resources of `service` whose ARN resource part starts with `prefix`, as
    /// `(arn, rest)`: key ids for `("kms", "key/")`, table names for `("dynamodb", "table/")`.
    pub fn resources<'a>(
        &'a self,
        service: &'a str,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.by_arn.keys().filter_map(move |arn| {
            let (s, resource) = arn_parts(arn)?;
            let rest = resource.strip_prefix(prefix)?;
            (s == service && !rest.is_empty()).then_some((arn.as_str(), rest))
        })
    }
}

/// `arn:<partition>:<service>:<region>:<account>:<resource>` → `(service, resource)`.
pub fn arn_parts(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    let _partition = parts.next()?;
    let service = parts.next()?;
    let _region = parts.next()?;
    let _account = parts.next()?;
    Some((service, parts.next()?))
}

/// Where a resource's tags come from.
#[derive(Debug, PartialEq, Eq)]
pub enum TagSource<'a> {
    /// Listed by the snapshot: owned, with these tags.
    Snapshot(&'a Tags),
    /// Not listed (not ours, or not indexed yet): read the resource's own tags.
    Resource,
}

pub fn tag_source<'a>(snapshot: &'a TagSnapshot, arn: Option<&str>) -> TagSource<'a> {
    match arn.and_then(|arn| snapshot.tags(arn)) {
        Some(tags) => TagSource::Snapshot(tags),
        None => TagSource::Resource,
    }
}

/// The tags of the resource at `arn`: the snapshot's when it lists the resource, else what
/// `read` (the kind's own per-resource tag read) returns.
pub async fn tags_or_read<F, Fut, E>(
    snapshot: &TagSnapshot,
    arn: Option<&str>,
    read: F,
) -> Result<Tags, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Tags, E>>,
{
    match tag_source(snapshot, arn) {
        TagSource::Snapshot(tags) => Ok(tags.clone()),
        TagSource::Resource => read().await,
    }
}

/// The resource a failed `GetResources` is reported against: the first tagged kind the blueprint
/// declares (all of them are observed through the snapshot).
fn error_resource(bp: &Blueprint) -> ResourceId {
    let kind = resource_types()
        .map(|(kind, _)| kind)
        .find(|kind| !declared(bp, *kind).is_empty())
        .unwrap_or(ResourceKind::KmsKey);
    ResourceId::new(kind, "*")
}

/// One paginated `GetResources` for everything of the tagged kinds that carries this blueprint's
/// ownership tag.
#[instrument(skip_all, fields(blueprint = %bp.metadata.name))]
pub async fn read(
    clients: &ReadOnlyClients,
    bp: &Blueprint,
) -> Result<TagSnapshot, ProvisionError> {
    let mappings = clients
        .tagging()
        .get_resources()
        .tag_filters(
            TagFilter::builder()
                .key(OWNERSHIP_BLUEPRINT_TAG)
                .values(&bp.metadata.name)
                .build(),
        )
        .set_resource_type_filters(Some(resource_types().map(|(_, t)| t.to_string()).collect()))
        .resources_per_page(RESOURCES_PER_PAGE)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .classify("tag:GetResources")
        .map_err(ProvisionError::aws(&error_resource(bp)))?;
    let snapshot = TagSnapshot::new(mappings.into_iter().filter_map(|m| {
        let tags: Tags = m
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        Some((m.resource_arn?, tags))
    }));
    debug!(resources = snapshot.len(), "tagging snapshot");
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn tags(blueprint: &str) -> Tags {
        Tags::from([
            (OWNERSHIP_BLUEPRINT_TAG.to_string(), blueprint.to_string()),
            ("team".to_string(), "payments".to_string()),
        ])
    }

    fn snapshot() -> TagSnapshot {
        TagSnapshot::new([
            (
                "arn:aws:kms:us-east-1:123456789012:key/1234abcd".to_string(),
                tags("banking"),
            ),
            (
                "arn:aws:dynamodb:us-east-1:123456789012:table/banking-accounts".to_string(),
                tags("banking"),
            ),
            (
                "arn:aws:sqs:us-east-1:123456789012:banking-transactions".to_string(),
                tags("banking"),
            ),
            (
                "arn:aws:cloudwatch:us-east-1:123456789012:alarm:banking-queue-depth".to_string(),
                tags("banking"),
            ),
        ])
    }

    #[test]
    fn arns_split_into_service_and_resource() {
        assert_eq!(
            arn_parts("arn:aws:cloudwatch:us-east-1:1:alarm:a:b"),
            Some(("cloudwatch", "alarm:a:b"))
        );
        assert_eq!(
            arn_parts("arn:aws-cn:kms:cn-north-1:1:key/k"),
            Some(("kms", "key/k"))
        );
        assert_eq!(arn_parts("alias/banking-data"), None);
        assert_eq!(arn_parts("arn:aws:kms"), None);
    }

    #[test]
    fn resources_select_one_service_and_resource_type() {
        let s = snapshot();
        let keys: Vec<_> = s.resources("kms", "key/").collect();
        assert_eq!(
            keys,
            [(
                "arn:aws:kms:us-east-1:123456789012:key/1234abcd",
                "1234abcd"
            )]
        );
        let tables: Vec<_> = s.resources("dynamodb", "table/").map(|(_, n)| n).collect();
        assert_eq!(tables, ["banking-accounts"]);
        assert_eq!(s.resources("kms", "alias/").count(), 0);
        assert_eq!(s.resources("ec2", "").count(), 0);
    }

    #[test]
    fn a_listed_resource_takes_its_tags_from_the_snapshot() {
        let s = snapshot();
        let arn = "arn:aws:sqs:us-east-1:123456789012:banking-transactions";
        assert_eq!(
            tag_source(&s, Some(arn)),
            TagSource::Snapshot(&tags("banking"))
        );
    }

    #[test]
    fn an_unlisted_or_arnless_resource_reads_its_own_tags() {
        let s = snapshot();
        // Created a moment ago (not indexed yet), or someone else's of the same name.
        let arn = "arn:aws:sqs:us-east-1:123456789012:banking-transactions-dlq";
        assert_eq!(tag_source(&s, Some(arn)), TagSource::Resource);
        assert_eq!(tag_source(&s, None), TagSource::Resource);
        assert_eq!(
            tag_source(&TagSnapshot::default(), Some(arn)),
            TagSource::Resource
        );
    }

    #[tokio::test]
    async fn tags_or_read_calls_the_fallback_only_for_unlisted_resources() {
        let s = snapshot();
        let reads = AtomicUsize::new(0);
        let read = || async {
            reads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(tags("banking"))
        };
        let listed = "arn:aws:dynamodb:us-east-1:123456789012:table/banking-accounts";
        assert_eq!(
            tags_or_read(&s, Some(listed), read).await,
            Ok(tags("banking"))
        );
        assert_eq!(reads.load(Ordering::SeqCst), 0, "listed: no tag read");
        let unlisted = "arn:aws:dynamodb:us-east-1:123456789012:table/banking-new";
        assert_eq!(
            tags_or_read(&s, Some(unlisted), read).await,
            Ok(tags("banking"))
        );
        assert_eq!(reads.load(Ordering::SeqCst), 1, "unlisted: one tag read");
        let other = tags_or_read(&s, Some(unlisted), || async {
            Ok::<_, ()>(tags("someone-else"))
        })
        .await;
        assert_eq!(
            other,
            Ok(tags("someone-else")),
            "the resource's own tags decide"
        );
    }
}
