//! What the IAM kinds (managed policies, roles, instance profiles) share: their tags, and how
//! observe picks the resources to read out of an account-wide listing.
//!
//! IAM is global and its names are the resources' identity: a create interrupted after it
//! succeeded is found by its name on the next observe (and completed by an update), never
//! created twice. Ownership is by the tags every create carries; IAM's list calls do not
//! return tags, so each candidate is read with its `Get…` call, which does.
//!
//! Which listed resources are candidates: the declared names, names under the stack's `<name>-`
//! prefix, and anything under the stack's IAM path ([`Blueprint::iam_path`], set by every create).
//! The path is what finds a custom-named resource (`roleName: payments-worker`) once the
//! blueprint no longer declares it, so that it is planned for deletion rather than left behind
//! unseen. Resources created before Ballast set the path (at `/`) are still found by their
//! declared name or the prefix.

use aws_sdk_iam::types::Tag;
use ballast_aws::BuildResultExt;
use ballast_blueprint::{Blueprint, ResourceId, ResourceKind, Tags, tagged_resource_id};

use crate::provision::error::ProvisionError;
use crate::provision::state::Ownership;

/// The tags of a create or tag call (`operation` names the call, for a build failure).
pub fn iam_tags(
    id: &ResourceId,
    tags: &Tags,
    operation: &'static str,
) -> Result<Vec<Tag>, ProvisionError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .built(operation)
                .map_err(ProvisionError::aws(id))
        })
        .collect()
}

/// Tags as IAM returns them.
pub fn tags_of(tags: &[Tag]) -> Tags {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

/// One resource a listing found that observe reads further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: ResourceId,
    /// Its name in IAM.
    pub name: String,
    /// Declared by the blueprint (else under the stack's prefix or path: read to see whether
    /// it is ours).
    pub declared: bool,
}

impl Candidate {
    /// The logical id of the resource read with `tags`: the declared one, else the one its
    /// `ballast.dev/resource` tag names (a custom-named resource's name says nothing about
    /// it), else the one its prefixed name implies.
    pub fn logical_id(&self, tags: &Tags) -> ResourceId {
        if self.declared {
            return self.id.clone();
        }
        tagged_resource_id(tags)
            .filter(|id| id.kind == self.id.kind)
            .unwrap_or_else(|| self.id.clone())
    }
}

/// One entry of an IAM listing: the resource's name and its path.
pub type Listed<'a> = (&'a str, &'a str);

/// The resources of `kind` among the `listed` ones: the declared ones, and those under the
/// stack's `<name>-` prefix or its IAM path (possibly removed from the blueprint).
pub fn candidates<'a>(
    bp: &Blueprint,
    kind: ResourceKind,
    listed: impl IntoIterator<Item = Listed<'a>>,
) -> Vec<Candidate> {
    let declared = ballast_blueprint::declared(bp, kind);
    let prefix = format!("{}-", bp.metadata.name);
    let path = bp.iam_path();
    listed
        .into_iter()
        .filter_map(|(name, listed_path)| {
            if let Some((id, _)) = declared.iter().find(|(_, n)| n == name) {
                return Some(Candidate {
                    id: id.clone(),
                    name: name.to_string(),
                    declared: true,
                });
            }
            let logical = match name.strip_prefix(&prefix) {
                Some(rest) => rest,
                None if listed_path == path => name,
                None => return None,
            };
            Some(Candidate {
                id: ResourceId::new(kind, logical),
                name: name.to_string(),
                declared: false,
            })
        })
        .collect()
}

/// Whether a candidate read with `tags` is to be filed: declared, or owned by this blueprint
/// (another stack's `<name>-…` resource is not ours to report).
pub fn is_ours(candidate: &Candidate, tags: &Tags, bp: &Blueprint) -> bool {
    candidate.declared || Ownership::from_tags(tags, &bp.metadata.name) == Ownership::Owned
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::typed::testing::shop_blueprint;
    use ballast_blueprint::OWNERSHIP_RESOURCE_TAG;

    fn blueprint() -> Blueprint {
        shop_blueprint(
            r#"  iamRoles:
    - {name: worker, assumedBy: [ec2.amazonaws.com]}
    - {name: auditor, roleName: payments-auditor, assumedBy: [ec2.amazonaws.com]}
"#,
        )
    }

    #[test]
    fn declared_prefixed_and_path_resources_are_candidates_and_nothing_else() {
        let bp = blueprint();
        assert_eq!(bp.iam_path(), "/ballast/shop/");
        let found = candidates(
            &bp,
            ResourceKind::IamRole,
            [
                ("shop-worker", "/ballast/shop/"),
                // A declared custom name is found at any path (created before paths).
                ("payments-auditor", "/"),
                // A custom name no declaration claims any more: found by the stack's path only.
                ("payments-reporter", "/ballast/shop/"),
                ("shop-old", "/"),
                ("someone-elses", "/"),
                ("shopfront-worker", "/ballast/shopfront/"),
                ("payments-x", "/ballast/shop/nested/"),
            ],
        );
        let summary: Vec<(String, &str, bool)> = found
            .iter()
            .map(|c| (c.id.to_string(), c.name.as_str(), c.declared))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("iam-role/worker".to_string(), "shop-worker", true),
                ("iam-role/auditor".to_string(), "payments-auditor", true),
                (
                    "iam-role/payments-reporter".to_string(),
                    "payments-reporter",
                    false
                ),
                ("iam-role/old".to_string(), "shop-old", false),
            ]
        );
    }

    #[test]
    fn an_undeclared_candidate_takes_the_logical_id_its_tag_names() {
        let bp = blueprint();
        let found = candidates(
            &bp,
            ResourceKind::IamRole,
            [
                ("payments-reporter", "/ballast/shop/"),
                ("shop-worker", "/"),
            ],
        );
        let tagged: Tags = [(
            OWNERSHIP_RESOURCE_TAG.to_string(),
            "iam-role/reporter".to_string(),
        )]
        .into_iter()
        .collect();
        assert_eq!(
            found[0].logical_id(&tagged).to_string(),
            "iam-role/reporter"
        );
        assert_eq!(
            found[0].logical_id(&Tags::new()).to_string(),
            "iam-role/payments-reporter"
        );
        // A tag of another kind is not this resource's id; a declared one keeps its own.
        let other: Tags = [(
            OWNERSHIP_RESOURCE_TAG.to_string(),
            "queue/reporter".to_string(),
        )]
        .into_iter()
        .collect();
        assert_eq!(
            found[0].logical_id(&other).to_string(),
            "iam-role/payments-reporter"
        );
        assert_eq!(found[1].logical_id(&tagged).to_string(), "iam-role/worker");
    }
}
