//! Resource targeting (`--target kind/name` on `ballast plan`, `apply` and `destroy`): which
//! resources a partial plan or destroy acts on.
//!
//! Pure: the blueprint and the targets in, a set of resource ids out. As with Terraform's
//! `-target`, a plan or apply acts on the targets and everything they depend on (so each target
//! can be created with what it references), and a destroy acts on the targets and everything that
//! depends on them (so nothing is left referring to a deleted resource).
//!
//! Only references that order creation ([`Reference::ordering`]) count: a reference that merely
//! names another resource (a redrive-allow list naming its source queues) needs neither to exist
//! first nor to outlive it, so it pulls nothing in. Otherwise targeting a dead-letter queue would
//! drag in every queue it accepts messages from, and destroying a source queue would destroy the
//! dead-letter queue (and its messages) with it.
//!
//! [`Reference::ordering`]: crate::graph::Reference::ordering

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostic::closest;
use crate::graph::{self, ResourceId, ResourceKind};
use crate::model::Blueprint;

/// Which way a selection follows the dependency graph from its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The targets and what they reference, transitively (`plan`, `apply`, `drift`).
    Dependencies,
    /// The targets and what references them, transitively (`destroy`).
    Dependents,
}

/// The targets as given (parsed, deduplicated, sorted) and the resources they select.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub targets: Vec<ResourceId>,
    /// The targets plus their dependencies or dependents (by [`Direction`]).
    pub resources: BTreeSet<ResourceId>,
}

impl Selection {
    pub fn contains(&self, id: &ResourceId) -> bool {
        self.resources.contains(id)
    }

    /// The targets as written on the command line, `kind/name`, comma-separated.
    pub fn targets_text(&self) -> String {
        self.targets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("target `{text}` is not `kind/name` (for example `queue/transactions`)")]
    Syntax { text: String },
    #[error("target `{text}`: no resource kind `{kind}`{}; kinds are: {}", hint(.closest), .valid.join(", "))]
    UnknownKind {
        text: String,
        kind: String,
        closest: Option<String>,
        valid: Vec<String>,
    },
    #[error("target `{text}`: blueprint `{blueprint}` declares no {kind} `{name}`{}; {}", hint(.closest), declared(.kind, .valid))]
    UnknownName {
        text: String,
        blueprint: String,
        kind: ResourceKind,
        name: String,
        closest: Option<String>,
        valid: Vec<String>,
    },
}

fn hint(closest: &Option<String>) -> String {
    closest
        .as_deref()
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

fn declared(kind: &ResourceKind, valid: &[String]) -> String {
    if valid.is_empty() {
        format!("it declares no {kind} at all")
    } else {
        format!("its {kind} resources are: {}", valid.join(", "))
    }
}

/// Reads one `kind/name` target and checks that the blueprint declares it.
pub fn parse(bp: &Blueprint, text: &str) -> Result<ResourceId, TargetError> {
    let Some((kind, name)) = text
        .split_once('/')
        .filter(|(k, n)| !k.is_empty() && !n.is_empty() && !n.contains('/'))
    else {
        return Err(TargetError::Syntax {
            text: text.to_string(),
        });
    };
    let Some(kind) = ResourceKind::ALL
        .iter()
        .copied()
        .find(|k| k.as_str() == kind)
    else {
        let names = ResourceKind::ALL.iter().map(|k| k.as_str());
        return Err(TargetError::UnknownKind {
            text: text.to_string(),
            kind: kind.to_string(),
            closest: closest(kind, names.clone()).map(str::to_string),
            valid: names.map(str::to_string).collect(),
        });
    };
    let id = ResourceId::new(kind, name);
    let resources = graph::resources(bp);
    if resources.iter().any(|(declared, _)| *declared == id) {
        return Ok(id);
    }
    let valid: Vec<String> = resources
        .iter()
        .filter(|(declared, _)| declared.kind == kind)
        .map(|(declared, _)| declared.name.clone())
        .collect();
    // The same name under another kind is the likelier slip than a typo in the name.
    let other_kind = resources
        .iter()
        .find(|(declared, _)| declared.name == name)
        .map(|(declared, _)| declared.to_string());
    let closest = other_kind
        .or_else(|| closest(name, valid.iter().map(String::as_str)).map(|n| format!("{kind}/{n}")));
    Err(TargetError::UnknownName {
        text: text.to_string(),
        blueprint: bp.metadata.name.clone(),
        kind,
        name: name.to_string(),
        closest,
        valid,
    })
}

/// Parses every target (the first bad one is the error) and selects the resources they reach in
/// `direction`.
pub fn select(
    bp: &Blueprint,
    targets: &[impl AsRef<str>],
    direction: Direction,
) -> Result<Selection, TargetError> {
    let targets: BTreeSet<ResourceId> = targets
        .iter()
        .map(|t| parse(bp, t.as_ref()))
        .collect::<Result<_, _>>()?;
    let edges: Vec<(ResourceId, ResourceId)> = graph::references(bp)
        .into_iter()
        .filter(|r| r.ordering)
        .map(|r| (r.from, r.to))
        .collect();
    let resources = reach(&targets, &edges, direction);
    Ok(Selection {
        targets: targets.into_iter().collect(),
        resources,
    })
}

/// The targets and every resource reachable from them along `edges` (`from` depends on `to`),
/// forwards for dependencies, backwards for dependents. Cycles are harmless: each resource is
/// visited once.
pub fn reach(
    targets: &BTreeSet<ResourceId>,
    edges: &[(ResourceId, ResourceId)],
    direction: Direction,
) -> BTreeSet<ResourceId> {
    let mut next: BTreeMap<&ResourceId, Vec<&ResourceId>> = BTreeMap::new();
    for (from, to) in edges {
        let (a, b) = match direction {
            Direction::Dependencies => (from, to),
            Direction::Dependents => (to, from),
        };
        next.entry(a).or_default().push(b);
    }
    let mut seen: BTreeSet<ResourceId> = targets.clone();
    let mut stack: Vec<&ResourceId> = targets.iter().collect();
    while let Some(id) = stack.pop() {
        for n in next.get(id).into_iter().flatten() {
            if seen.insert((*n).clone()) {
                stack.push(n);
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two keys; `work` is encrypted by `main` and sends failures to `work-dlq`, which names
    /// `work` in its redrive-allow list (a naming reference); an alarm watches `work`; `audit`
    /// and the table depend on nothing of the above.
    const TEXT: &str = r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: { name: fx, region: us-east-1 }
spec:
  kmsKeys:
    - name: main
    - name: other
  queues:
    - name: work
      encryption: { type: kms, kmsKey: main }
      deadLetter: { queue: work-dlq, maxReceiveCount: 3 }
    - name: work-dlq
      encryption: { type: kms, kmsKey: main }
      redriveAllow: { policy: byQueue, sourceQueues: [work] }
    - name: audit
      encryption: { type: kms, kmsKey: other }
  tables:
    - name: items
      hashKey: { name: pk, type: S }
  alarms:
    - name: depth
      queue: work
      metric: ApproximateNumberOfMessagesVisible
      statistic: Maximum
      period: 60s
      threshold: 10
      comparison: greaterThan
      evaluationPeriods: 1
"#;

    fn bp() -> Blueprint {
        match crate::parse("fx.yaml", TEXT) {
            Ok(loaded) => loaded.blueprint,
            Err(e) => panic!("{e}"),
        }
    }

    fn ids(list: &[&str]) -> BTreeSet<ResourceId> {
        let bp = bp();
        list.iter()
            .map(|t| parse(&bp, t).unwrap_or_else(|e| panic!("{e}")))
            .collect()
    }

    fn selected(targets: &[&str], direction: Direction) -> BTreeSet<ResourceId> {
        select(&bp(), targets, direction)
            .unwrap_or_else(|e| panic!("{e}"))
            .resources
    }

    #[test]
    fn a_target_pulls_in_its_dependencies_transitively_and_nothing_else() {
        assert_eq!(
            selected(&["queue/work-dlq"], Direction::Dependencies),
            ids(&["queue/work-dlq", "kms-key/main"]),
            "the redrive-allow list only names `work`: it is not pulled in"
        );
        assert_eq!(
            selected(&["alarm/depth"], Direction::Dependencies),
            ids(&[
                "alarm/depth",
                "queue/work",
                "queue/work-dlq",
                "kms-key/main"
            ])
        );
        assert_eq!(
            selected(&["table/items"], Direction::Dependencies),
            ids(&["table/items"])
        );
    }

    #[test]
    fn destroy_selects_the_target_and_its_dependents_transitively() {
        assert_eq!(
            selected(&["kms-key/main"], Direction::Dependents),
            ids(&[
                "kms-key/main",
                "queue/work",
                "queue/work-dlq",
                "alarm/depth"
            ])
        );
        assert_eq!(
            selected(&["queue/work-dlq"], Direction::Dependents),
            ids(&["queue/work-dlq", "queue/work", "alarm/depth"])
        );
        assert_eq!(
            selected(&["queue/work"], Direction::Dependents),
            ids(&["queue/work", "alarm/depth"]),
            "the dead-letter queue only names `work` and is kept"
        );
    }

    #[test]
    fn several_targets_select_the_union_and_are_listed_once_in_order() {
        let selection = select(
            &bp(),
            &["table/items", "queue/audit", "table/items"],
            Direction::Dependencies,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            selection.resources,
            ids(&["table/items", "queue/audit", "kms-key/other"])
        );
        assert_eq!(selection.targets_text(), "queue/audit, table/items");
    }

    #[test]
    fn an_unknown_kind_lists_the_kinds_and_the_closest() {
        let err = select(&bp(), &["queues/work"], Direction::Dependencies).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, TargetError::UnknownKind { .. }), "{text}");
        assert!(
            text.contains("no resource kind `queues` (did you mean `queue`?)"),
            "{text}"
        );
        assert!(text.contains("auto-scaling-group"), "{text}");
    }

    #[test]
    fn an_undeclared_name_lists_the_declared_ones_and_the_closest() {
        let err = select(&bp(), &["queue/wrok"], Direction::Dependencies).unwrap_err();
        assert_eq!(
            err.to_string(),
            "target `queue/wrok`: blueprint `fx` declares no queue `wrok` (did you mean `queue/work`?); \
             its queue resources are: work, work-dlq, audit"
        );
        let err = parse(&bp(), "queue/main").unwrap_err().to_string();
        assert!(err.contains("did you mean `kms-key/main`?"), "{err}");
        let err = parse(&bp(), "topic/alerts").unwrap_err().to_string();
        assert!(err.contains("it declares no topic at all"), "{err}");
    }

    #[test]
    fn a_target_without_a_kind_or_a_name_is_a_syntax_error() {
        for text in ["work", "queue/", "/work", "queue/a/b", ""] {
            assert!(
                matches!(parse(&bp(), text), Err(TargetError::Syntax { .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn reach_survives_a_cycle() {
        let a = ResourceId::new(ResourceKind::Queue, "a");
        let b = ResourceId::new(ResourceKind::Queue, "b");
        let edges = vec![(a.clone(), b.clone()), (b.clone(), a.clone())];
        let start: BTreeSet<ResourceId> = [a.clone()].into();
        assert_eq!(reach(&start, &edges, Direction::Dependents), [a, b].into());
    }
}
