//! Per-environment values: one blueprint, several stacks (`ballast plan banking.yaml --values
//! prod.yaml`).
//!
//! A values file is a partial blueprint laid over the base file before anything is checked, as
//! kustomize's strategic merge and Helm's values do:
//! - a mapping merges key by key, recursively; a key the base lacks is added;
//! - a list whose items are mappings with a `name` (every resource list of the language) merges
//!   item by item on `name`: an item naming a base item merges into it, any other is appended;
//! - anything else (a scalar, a list of plain values such as `instanceTypes`) replaces the base
//!   value.
//!
//! Nothing can be removed: an environment that lacks a resource declares it in the files of the
//! environments that have it. Several values files apply in order, the last one winning.
//!
//! Every node keeps the position of the file it was written in (its `source`: 0 for the base,
//! `n` for the n-th values file), so a problem an environment's value causes is reported at that
//! value, in that file.

use crate::diagnostic::Position;
use crate::yaml::{Node, NodeValue};

/// Sets `source` on every position of `node`: it was read from that file.
pub fn relocate(node: &mut Node, source: u8) {
    node.position.source = source;
    match &mut node.value {
        NodeValue::Mapping(entries) => {
            for (key, value) in entries {
                key.position.source = source;
                relocate(value, source);
            }
        }
        NodeValue::Sequence(items) => {
            for item in items {
                relocate(item, source);
            }
        }
        NodeValue::Scalar(_) => {}
    }
}

/// Lays `overlay` over `base` (the rules in the module docs).
pub fn merge(base: &mut Node, overlay: Node) {
    match (&mut base.value, overlay.value) {
        (NodeValue::Mapping(entries), NodeValue::Mapping(over)) => {
            for (key, value) in over {
                match entries.iter_mut().find(|(k, _)| k.text == key.text) {
                    Some((_, existing)) => merge(existing, value),
                    None => entries.push((key, value)),
                }
            }
        }
        (NodeValue::Sequence(items), NodeValue::Sequence(over)) if named_items(items) => {
            for item in over {
                let name = item_name(&item).map(str::to_owned);
                match name.and_then(|n| items.iter_mut().find(|i| item_name(i) == Some(&n))) {
                    Some(existing) => merge(existing, item),
                    None => items.push(item),
                }
            }
        }
        (_, value) => {
            *base = Node {
                value,
                position: overlay.position,
            };
        }
    }
}

/// True when every item of a non-empty list is a mapping with a `name`.
fn named_items(items: &[Node]) -> bool {
    !items.is_empty() && items.iter().all(|i| item_name(i).is_some())
}

fn item_name(node: &Node) -> Option<&str> {
    let NodeValue::Mapping(entries) = &node.value else {
        return None;
    };
    entries.iter().find_map(|(k, v)| match &v.value {
        NodeValue::Scalar(s) if k.text == "name" => Some(s.text.as_str()),
        _ => None,
    })
}

/// The position a diagnostic about the whole values file `source` points at.
pub fn file_start(source: u8) -> Position {
    Position {
        source,
        ..Position::new(1, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_document;

    fn tree(text: &str, source: u8) -> Node {
        let (mut node, problems) = parse_document(text).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        relocate(&mut node, source);
        node
    }

    fn scalar_at<'a>(node: &'a Node, path: &[&str]) -> &'a Node {
        let mut at = node;
        for step in path {
            at = match &at.value {
                NodeValue::Mapping(entries) => {
                    &entries.iter().find(|(k, _)| k.text == *step).unwrap().1
                }
                NodeValue::Sequence(items) => {
                    items.iter().find(|i| item_name(i) == Some(step)).unwrap()
                }
                NodeValue::Scalar(_) => panic!("no {step} under a scalar"),
            };
        }
        at
    }

    fn text(node: &Node) -> &str {
        match &node.value {
            NodeValue::Scalar(s) => &s.text,
            other => panic!("not a scalar: {other:?}"),
        }
    }

    const BASE: &str = "metadata: {name: banking, region: us-east-1}\nspec:\n  queues:\n    - {name: transactions, visibilityTimeout: 60s}\n    - {name: transactions-dlq}\n  launchTemplates:\n    - {name: worker, instanceTypes: [t3.small, t3a.small]}\n";

    #[test]
    fn mappings_merge_named_items_merge_by_name_and_the_rest_is_replaced() {
        let mut base = tree(BASE, 0);
        let overlay = tree(
            "metadata: {name: banking-prod}\nspec:\n  queues:\n    - {name: transactions, visibilityTimeout: 120s}\n    - {name: audit}\n  launchTemplates:\n    - {name: worker, instanceTypes: [m6i.large]}\n",
            1,
        );
        merge(&mut base, overlay);
        assert_eq!(
            text(scalar_at(&base, &["metadata", "name"])),
            "banking-prod"
        );
        assert_eq!(text(scalar_at(&base, &["metadata", "region"])), "us-east-1");
        let timeout = scalar_at(
            &base,
            &["spec", "queues", "transactions", "visibilityTimeout"],
        );
        assert_eq!(text(timeout), "120s");
        // The value is reported where the environment wrote it.
        assert_eq!(timeout.position.source, 1);
        assert_eq!(timeout.position.line, 4);
        let queues = scalar_at(&base, &["spec", "queues"]);
        let NodeValue::Sequence(items) = &queues.value else {
            panic!("queues is a list");
        };
        let names: Vec<_> = items.iter().filter_map(item_name).collect();
        assert_eq!(names, ["transactions", "transactions-dlq", "audit"]);
        let types = scalar_at(
            &base,
            &["spec", "launchTemplates", "worker", "instanceTypes"],
        );
        let NodeValue::Sequence(types) = &types.value else {
            panic!("instanceTypes is a list");
        };
        assert_eq!(types.iter().map(text).collect::<Vec<_>>(), ["m6i.large"]);
    }

    #[test]
    fn later_files_win_and_untouched_values_keep_their_base_position() {
        let mut base = tree(BASE, 0);
        merge(
            &mut base,
            tree(
                "spec:\n  queues:\n    - {name: transactions, visibilityTimeout: 90s}\n",
                1,
            ),
        );
        merge(
            &mut base,
            tree(
                "spec:\n  queues:\n    - {name: transactions, visibilityTimeout: 30s}\n",
                2,
            ),
        );
        let timeout = scalar_at(
            &base,
            &["spec", "queues", "transactions", "visibilityTimeout"],
        );
        assert_eq!((text(timeout), timeout.position.source), ("30s", 2));
        let region = scalar_at(&base, &["metadata", "region"]);
        assert_eq!(region.position.source, 0);
    }
}
