//! What the IAM kinds (managed policies, roles, instance profiles) share: their tags, and how
//! observe picks the resources to read out of an account-wide listing.
//!
//! IAM is global and its names are the resources' identity: a create interrupted after it
//! succeeded is found by its name on the next observe (and completed by an update), never
//! created twice. Ownership is by the tags every create carries; IAM's list calls do not
//! return tags, so each candidate is read with its `Get…` call, which does.

use aws_sdk_iam::types::Tag;
use ballast_aws::BuildResultExt;
use ballast_blueprint::{Blueprint, ResourceId, ResourceKind, Tags};

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
    /// Declared by the blueprint (else under the stack's prefix: read to see whether it is ours).
    pub declared: bool,
}

/// The resources of `kind` among the listed `names`: the declared ones, and those under the
/// stack's `<name>-` prefix (possibly removed from the blueprint).
pub fn candidates<'a>(
    bp: &Blueprint,
    kind: ResourceKind,
    names: impl IntoIterator<Item = &'a str>,
) -> Vec<Candidate> {
    let declared = ballast_blueprint::declared(bp, kind);
    let prefix = format!("{}-", bp.metadata.name);
    names
        .into_iter()
        .filter_map(|name| match declared.iter().find(|(_, n)| n == name) {
            Some((id, _)) => Some(Candidate {
                id: id.clone(),
                name: name.to_string(),
                declared: true,
            }),
            None => name.strip_prefix(&prefix).map(|rest| Candidate {
                id: ResourceId::new(kind, rest),
                name: name.to_string(),
                declared: false,
            }),
        })
        .collect()
}

/// Whether a candidate read with `tags` is to be filed: declared, or owned by this blueprint
/// (another stack's `<name>-…` resource is not ours to report).
pub fn is_ours(candidate: &Candidate, tags: &Tags, bp: &Blueprint) -> bool {
    candidate.declared || Ownership::from_tags(tags, &bp.metadata.name) == Ownership::Owned
}
