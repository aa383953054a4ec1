//! Tags: the limits every AWS service enforces, and the keys Ballast keeps for itself.
//!
//! AWS refuses a tag key over 128 characters, a value over 256, a key starting with `aws:`, and
//! more than 50 tags on one resource. Ballast adds its ownership tags (`ballast.dev/…`) and the
//! blueprint's `metadata.tags` to every resource, so those count against the 50 too, and a user tag
//! under `ballast.dev/` would overwrite Ballast's own (`ballast.dev/managed: "false"` would
//! disown a resource): such keys are refused.

use super::*;
use crate::naming::{OWNERSHIP_TAG_COUNT, OWNERSHIP_TAG_PREFIX};

/// Most tags AWS accepts on one resource.
const MAX_TAGS: usize = 50;
const MAX_KEY_CHARS: usize = 128;
const MAX_VALUE_CHARS: usize = 256;

impl Validator<'_> {
    /// The blueprint-wide `metadata.tags`: key and value rules, and the count left for resources.
    pub(super) fn metadata_tags(&mut self, bp: &Blueprint) {
        self.tag_entries(&bp.metadata.tags, "metadata.tags");
        let count = bp.metadata.tags.len();
        let room = MAX_TAGS.saturating_sub(OWNERSHIP_TAG_COUNT);
        if count > room {
            self.error(
                "metadata.tags",
                format!(
                    "{count} tags: with Ballast's {OWNERSHIP_TAG_COUNT} ownership tags every resource would carry more than AWS's {MAX_TAGS}"
                ),
                format!("keep at most {room} blueprint-wide tags"),
            );
        }
    }

    /// One resource's own `tags`, which AWS sees together with `metadata.tags` and Ballast's.
    pub(super) fn resource_tags(&mut self, bp: &Blueprint, tags: &Tags, path: &str) {
        let path = format!("{path}.tags");
        self.tag_entries(tags, &path);
        let inherited = bp
            .metadata
            .tags
            .keys()
            .filter(|k| !tags.contains_key(*k))
            .count();
        let total = tags
            .len()
            .saturating_add(inherited)
            .saturating_add(OWNERSHIP_TAG_COUNT);
        // A `metadata.tags` overflow is reported once, there, not again on every resource.
        if total > MAX_TAGS
            && bp.metadata.tags.len() <= MAX_TAGS.saturating_sub(OWNERSHIP_TAG_COUNT)
        {
            self.error(
                &path,
                format!(
                    "the resource would carry {total} tags ({} here, {inherited} from `metadata.tags`, {OWNERSHIP_TAG_COUNT} of Ballast's), over AWS's {MAX_TAGS}",
                    tags.len()
                ),
                "remove tags here or in `metadata.tags`",
            );
        }
    }

    fn tag_entries(&mut self, tags: &Tags, path: &str) {
        for (key, value) in tags {
            let at = format!("{path}.{key}");
            if key.is_empty() {
                self.error(
                    &at,
                    "a tag key is empty",
                    "tag keys have 1 to 128 characters",
                );
            } else if key.chars().count() > MAX_KEY_CHARS {
                self.error(
                    &at,
                    format!(
                        "tag key `{}…` has {} characters, over AWS's {MAX_KEY_CHARS}",
                        key.chars().take(20).collect::<String>(),
                        key.chars().count()
                    ),
                    "shorten the key",
                );
            }
            if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
                self.error(
                    &at,
                    format!("tag key `{key}` uses the `aws:` prefix, which AWS reserves"),
                    "choose a key without the `aws:` prefix",
                );
            }
            if key.starts_with(OWNERSHIP_TAG_PREFIX) {
                self.error(
                    &at,
                    format!("tag key `{key}` is under `{OWNERSHIP_TAG_PREFIX}`, which Ballast reserves for its ownership tags"),
                    "Ballast sets these itself; choose another prefix, e.g. your team's domain",
                );
            }
            if value.chars().count() > MAX_VALUE_CHARS {
                self.error(
                    &at,
                    format!(
                        "the value of tag `{key}` has {} characters, over AWS's {MAX_VALUE_CHARS}",
                        value.chars().count()
                    ),
                    "shorten the value",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::naming::{OWNERSHIP_TAG_COUNT, OWNERSHIP_TAG_PREFIX};

    fn blueprint(metadata_tags: usize, queue_tags: usize) -> String {
        let mut text = String::from(
            "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata:\n  name: fx\n  region: us-east-1\n",
        );
        if metadata_tags > 0 {
            text.push_str("  tags:\n");
            for i in 0..metadata_tags {
                text.push_str(&format!("    m{i}: v\n"));
            }
        }
        text.push_str("spec:\n  queues:\n    - name: q\n");
        if queue_tags > 0 {
            text.push_str("      tags:\n");
            for i in 0..queue_tags {
                text.push_str(&format!("        q{i}: v\n"));
            }
        }
        text
    }

    #[test]
    fn the_tag_limit_counts_ballasts_and_the_blueprints_tags() {
        let room = 50 - OWNERSHIP_TAG_COUNT;
        assert!(crate::parse("fx.yaml", &blueprint(10, room - 10)).is_ok());
        let over = crate::parse("fx.yaml", &blueprint(10, room - 9)).unwrap_err();
        assert!(over.to_string().contains("would carry 51 tags"), "{over}");
        let metadata_over = crate::parse("fx.yaml", &blueprint(room + 1, 0)).unwrap_err();
        assert_eq!(metadata_over.errors().count(), 1, "{metadata_over}");
    }

    #[test]
    fn ownership_tags_are_the_counted_ones_under_the_reserved_prefix() {
        let loaded = crate::parse("fx.yaml", &blueprint(0, 1)).unwrap();
        let id = crate::ResourceId::new(crate::ResourceKind::Queue, "q");
        let tags = loaded.blueprint.ownership_tags_for(&id);
        assert_eq!(tags.len(), OWNERSHIP_TAG_COUNT);
        assert!(tags.keys().all(|k| k.starts_with(OWNERSHIP_TAG_PREFIX)));
        assert_eq!(tags[crate::naming::OWNERSHIP_RESOURCE_TAG], "queue/q");
        assert_eq!(crate::naming::tagged_resource_id(&tags), Some(id));
    }
}
