//! Resources of a blueprint, the references between them, and the order to create them in.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::model::{Blueprint, QueueEncryptionKind, TableEncryptionKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceKind {
    KmsKey,
    Vpc,
    Subnet,
    VpcEndpoint,
    Queue,
    Table,
    LaunchTemplate,
    AutoScalingGroup,
    Alarm,
    Dashboard,
    ScalingPolicy,
}

impl ResourceKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::KmsKey => "kms-key",
            Self::Vpc => "vpc",
            Self::Subnet => "subnet",
            Self::VpcEndpoint => "vpc-endpoint",
            Self::Queue => "queue",
            Self::Table => "table",
            Self::LaunchTemplate => "launch-template",
            Self::AutoScalingGroup => "auto-scaling-group",
            Self::Alarm => "alarm",
            Self::Dashboard => "dashboard",
            Self::ScalingPolicy => "scaling-policy",
        }
    }

    /// Kinds whose deletion loses data: they default to `deletionPolicy: retain`.
    pub fn is_stateful(&self) -> bool {
        matches!(self, Self::KmsKey | Self::Queue | Self::Table)
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// Every resource of the blueprint with the field path where it is declared.
pub fn resources(bp: &Blueprint) -> Vec<(ResourceId, String)> {
    let spec = &bp.spec;
    let mut out = Vec::new();
    let mut push = |kind, name: &str, path: String| out.push((ResourceId::new(kind, name), path));
    for (i, r) in spec.kms_keys.iter().enumerate() {
        push(ResourceKind::KmsKey, &r.name, format!("spec.kmsKeys[{i}]"));
    }
    if let Some(network) = &spec.network {
        push(
            ResourceKind::Vpc,
            &network.vpc.name,
            "spec.network.vpc".into(),
        );
        for (i, s) in network.vpc.subnets.iter().enumerate() {
            push(
                ResourceKind::Subnet,
                &s.name,
                format!("spec.network.vpc.subnets[{i}]"),
            );
        }
        for (i, e) in network.endpoints.iter().enumerate() {
            push(
                ResourceKind::VpcEndpoint,
                &e.name,
                format!("spec.network.endpoints[{i}]"),
            );
        }
    }
    for (i, r) in spec.queues.iter().enumerate() {
        push(ResourceKind::Queue, &r.name, format!("spec.queues[{i}]"));
    }
    for (i, r) in spec.tables.iter().enumerate() {
        push(ResourceKind::Table, &r.name, format!("spec.tables[{i}]"));
    }
    for (i, r) in spec.launch_templates.iter().enumerate() {
        push(
            ResourceKind::LaunchTemplate,
            &r.name,
            format!("spec.launchTemplates[{i}]"),
        );
    }
    for (i, r) in spec.auto_scaling_groups.iter().enumerate() {
        push(
            ResourceKind::AutoScalingGroup,
            &r.name,
            format!("spec.autoScalingGroups[{i}]"),
        );
    }
    for (i, r) in spec.alarms.iter().enumerate() {
        push(ResourceKind::Alarm, &r.name, format!("spec.alarms[{i}]"));
    }
    for (i, r) in spec.dashboards.iter().enumerate() {
        push(
            ResourceKind::Dashboard,
            &r.name,
            format!("spec.dashboards[{i}]"),
        );
    }
    for (i, r) in spec.scaling_policies.iter().enumerate() {
        push(
            ResourceKind::ScalingPolicy,
            &r.name,
            format!("spec.scalingPolicies[{i}]"),
        );
    }
    out
}

/// A subnet field may hold a blueprint subnet name or a literal `subnet-…` id.
pub fn is_literal_id(value: &str, prefix: &str) -> bool {
    value.starts_with(prefix)
}

/// Every reference by blueprint name in the blueprint.
pub fn references(bp: &Blueprint) -> Vec<Reference> {
    use ResourceKind as K;
    let spec = &bp.spec;
    let mut out = Vec::new();
    let mut add = |from: ResourceId, path: String, kind: K, name: &str, ordering: bool| {
        out.push(Reference {
            from,
            path,
            to: ResourceId::new(kind, name),
            ordering,
        });
    };
    for (i, q) in spec.queues.iter().enumerate() {
        let me = ResourceId::new(K::Queue, &q.name);
        let base = format!("spec.queues[{i}]");
        if q.encryption.kind == QueueEncryptionKind::Kms
            && let Some(key) = &q.encryption.kms_key
        {
            add(
                me.clone(),
                format!("{base}.encryption.kmsKey"),
                K::KmsKey,
                key,
                true,
            );
        }
        if let Some(dl) = &q.dead_letter {
            add(
                me.clone(),
                format!("{base}.deadLetter.queue"),
                K::Queue,
                &dl.queue,
                true,
            );
        }
        if let Some(ra) = &q.redrive_allow {
            for (j, source) in ra.source_queues.iter().enumerate() {
                let path = format!("{base}.redriveAllow.sourceQueues[{j}]");
                add(me.clone(), path, K::Queue, source, false);
            }
        }
    }
    for (i, t) in spec.tables.iter().enumerate() {
        if t.encryption.kind == TableEncryptionKind::Kms
            && let Some(key) = &t.encryption.kms_key
        {
            let me = ResourceId::new(K::Table, &t.name);
            add(
                me,
                format!("spec.tables[{i}].encryption.kmsKey"),
                K::KmsKey,
                key,
                true,
            );
        }
    }
    if let Some(network) = &spec.network {
        let vpc = &network.vpc.name;
        for s in &network.vpc.subnets {
            let me = ResourceId::new(K::Subnet, &s.name);
            add(me, "spec.network.vpc".into(), K::Vpc, vpc, true);
        }
        for (i, e) in network.endpoints.iter().enumerate() {
            let me = ResourceId::new(K::VpcEndpoint, &e.name);
            add(
                me.clone(),
                format!("spec.network.endpoints[{i}]"),
                K::Vpc,
                vpc,
                true,
            );
            for (j, subnet) in e.subnets.iter().enumerate() {
                if !is_literal_id(subnet, "subnet-") {
                    let path = format!("spec.network.endpoints[{i}].subnets[{j}]");
                    add(me.clone(), path, K::Subnet, subnet, true);
                }
            }
            if e.route_tables.is_empty() {
                for s in &network.vpc.subnets {
                    let path = format!("spec.network.endpoints[{i}]");
                    add(me.clone(), path, K::Subnet, &s.name, true);
                }
            }
        }
    }
    for (i, g) in spec.auto_scaling_groups.iter().enumerate() {
        let me = ResourceId::new(K::AutoScalingGroup, &g.name);
        let base = format!("spec.autoScalingGroups[{i}]");
        add(
            me.clone(),
            format!("{base}.launchTemplate"),
            K::LaunchTemplate,
            &g.launch_template,
            true,
        );
        for (j, subnet) in g.subnets.iter().enumerate() {
            if !is_literal_id(subnet, "subnet-") {
                add(
                    me.clone(),
                    format!("{base}.subnets[{j}]"),
                    K::Subnet,
                    subnet,
                    true,
                );
            }
        }
    }
    for (i, a) in spec.alarms.iter().enumerate() {
        let me = ResourceId::new(K::Alarm, &a.name);
        let base = format!("spec.alarms[{i}]");
        if let Some(queue) = &a.metric.queue {
            add(me.clone(), format!("{base}.queue"), K::Queue, queue, true);
        }
        if let Some(fleet) = &a.metric.fleet {
            add(
                me.clone(),
                format!("{base}.fleet"),
                K::AutoScalingGroup,
                fleet,
                true,
            );
        }
    }
    for (i, d) in spec.dashboards.iter().enumerate() {
        let me = ResourceId::new(K::Dashboard, &d.name);
        for (j, w) in d.widgets.iter().enumerate() {
            for (k, m) in w.metrics.iter().enumerate() {
                let base = format!("spec.dashboards[{i}].widgets[{j}].metrics[{k}]");
                if let Some(queue) = &m.metric.queue {
                    add(me.clone(), format!("{base}.queue"), K::Queue, queue, true);
                }
                if let Some(fleet) = &m.metric.fleet {
                    add(
                        me.clone(),
                        format!("{base}.fleet"),
                        K::AutoScalingGroup,
                        fleet,
                        true,
                    );
                }
            }
        }
    }
    for (i, p) in spec.scaling_policies.iter().enumerate() {
        let me = ResourceId::new(K::ScalingPolicy, &p.name);
        let base = format!("spec.scalingPolicies[{i}]");
        add(
            me.clone(),
            format!("{base}.queue"),
            K::Queue,
            &p.queue,
            true,
        );
        if let Some(fleet) = &p.fleet {
            add(
                me.clone(),
                format!("{base}.fleet"),
                K::AutoScalingGroup,
                fleet,
                true,
            );
        }
    }
    out
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
