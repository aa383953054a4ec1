//! Resources of a blueprint, the references between them, and the order to create them in.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::model::Blueprint;
use crate::registry;
pub use crate::registry::ResourceKind;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ResourceId {
    pub kind: ResourceKind,
    pub name: String,
}

impl ResourceId {
    pub fn new(kind: ResourceKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// One reference from a field of a resource to another resource, by blueprint name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub from: ResourceId,
    /// Field path of the reference, e.g. `spec.queues[0].deadLetter.queue`.
    pub path: String,
    pub to: ResourceId,
    /// Whether `to` must exist before `from` (a redrive-allow list only names its sources).
    pub ordering: bool,
}

impl Reference {
    pub fn new(
        from: &ResourceId,
        path: impl Into<String>,
        kind: ResourceKind,
        name: &str,
        ordering: bool,
    ) -> Self {
        Self {
            from: from.clone(),
            path: path.into(),
            to: ResourceId::new(kind, name),
            ordering,
        }
    }
}

/// Every resource of the blueprint with the field path where it is declared, in registry order
/// (and declaration order within a kind).
pub fn resources(bp: &Blueprint) -> Vec<(ResourceId, String)> {
    registry::all_resources(bp)
}

/// A subnet field may hold a blueprint subnet name or a literal `subnet-…` id.
pub fn is_literal_id(value: &str, prefix: &str) -> bool {
    value.starts_with(prefix)
}

/// Every reference by blueprint name in the blueprint (each kind's [`Resource::references`]).
///
/// [`Resource::references`]: crate::registry::Resource::references
pub fn references(bp: &Blueprint) -> Vec<Reference> {
    registry::all_references(bp)
}

/// Strongly connected groups of more than one resource (or a resource depending on itself).
pub fn cycles(nodes: &[ResourceId], edges: &[(ResourceId, ResourceId)]) -> Vec<Vec<ResourceId>> {
    let mut graph: BTreeMap<&ResourceId, Vec<&ResourceId>> = BTreeMap::new();
    for n in nodes {
        graph.entry(n).or_default();
    }
    for (from, to) in edges {
        graph.entry(from).or_default().push(to);
    }
    // Tarjan's algorithm, iterative enough for blueprint sizes.
    struct State<'a> {
        index: BTreeMap<&'a ResourceId, usize>,
        low: BTreeMap<&'a ResourceId, usize>,
        on_stack: BTreeSet<&'a ResourceId>,
        stack: Vec<&'a ResourceId>,
        next: usize,
        out: Vec<Vec<ResourceId>>,
    }
    fn visit<'a>(
        v: &'a ResourceId,
        graph: &BTreeMap<&'a ResourceId, Vec<&'a ResourceId>>,
        s: &mut State<'a>,
    ) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in graph.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(w, graph, s);
                // `w` and `v` are both visited by now; a missing entry would only skip an
                // update, never panic.
                if let Some(lw) = s.low.get(w).copied()
                    && let Some(lv) = s.low.get_mut(v)
                {
                    *lv = (*lv).min(lw);
                }
            } else if s.on_stack.contains(w)
                && let (Some(&iw), Some(lv)) = (s.index.get(w), s.low.get_mut(v))
            {
                *lv = (*lv).min(iw);
            }
        }
        if s.low.get(v) == s.index.get(v) {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            let self_loop = graph.get(v).is_some_and(|ws| ws.contains(&v));
            if component.len() > 1 || self_loop {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        on_stack: BTreeSet::new(),
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    let keys: Vec<&ResourceId> = graph.keys().copied().collect();
    for v in keys {
        if !state.index.contains_key(v) {
            visit(v, &graph, &mut state);
        }
    }
    state.out
}

/// Resources so that each comes after everything it depends on; ties keep declaration order.
/// Callers validate first, so dangling references and cycles are ignored here.
pub fn dependency_order(bp: &Blueprint) -> Vec<ResourceId> {
    let nodes: Vec<ResourceId> = resources(bp).into_iter().map(|(id, _)| id).collect();
    let known: BTreeSet<&ResourceId> = nodes.iter().collect();
    let mut deps: BTreeMap<&ResourceId, BTreeSet<&ResourceId>> = BTreeMap::new();
    let refs = references(bp);
    for r in refs.iter().filter(|r| r.ordering && r.from != r.to) {
        if known.contains(&r.to) {
            deps.entry(&r.from).or_default().insert(&r.to);
        }
    }
    let mut placed: BTreeSet<&ResourceId> = BTreeSet::new();
    let mut order = Vec::new();
    while order.len() < nodes.len() {
        let before = order.len();
        for n in &nodes {
            if placed.contains(n) {
                continue;
            }
            let ready = deps
                .get(n)
                .is_none_or(|d| d.iter().all(|x| placed.contains(x)));
            if ready {
                placed.insert(n);
                order.push(n.clone());
            }
        }
        if order.len() == before {
            // A cycle: validation reports it; place the rest in declaration order.
            order.extend(nodes.iter().filter(|n| !placed.contains(n)).cloned());
            break;
        }
    }
    order
}
