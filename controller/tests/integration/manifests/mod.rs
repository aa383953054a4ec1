//! The Kubernetes manifests, the kustomize base `manifests/base/`: every document deserializes
//! into its exact `k8s-openapi` type with no unknown or misspelt field, and the objects agree with
//! each other (names, labels and selectors, ports, service accounts, RBAC, ConfigMap keys), with
//! the blueprint on disk and with the command lines the two binaries accept. `kustomize.rs`
//! checks the base's and the example overlay's kustomization files, `image.rs` the Dockerfile
//! the images are built from.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

mod image;
mod kustomize;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PodSpec, Probe, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

const CONTROLLER: &str = "ballast-controller";
const WORKER: &str = "ballast-worker";
const IRSA_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

// ---------------------------------------------------------------------------------------------
// Loading: split, dispatch on apiVersion/kind, deserialize strictly.
// ---------------------------------------------------------------------------------------------

/// One document, typed.
#[derive(Debug)]
enum Object {
    Namespace(Box<Namespace>),
    ServiceAccount(Box<ServiceAccount>),
    Role(Box<Role>),
    RoleBinding(Box<RoleBinding>),
    ConfigMap(Box<ConfigMap>),
    Deployment(Box<Deployment>),
    Service(Box<Service>),
    PodDisruptionBudget(Box<PodDisruptionBudget>),
}

impl Object {
    fn kind(&self) -> &'static str {
        match self {
            Object::Namespace(_) => "Namespace",
            Object::ServiceAccount(_) => "ServiceAccount",
            Object::Role(_) => "Role",
            Object::RoleBinding(_) => "RoleBinding",
            Object::ConfigMap(_) => "ConfigMap",
            Object::Deployment(_) => "Deployment",
            Object::Service(_) => "Service",
            Object::PodDisruptionBudget(_) => "PodDisruptionBudget",
        }
    }

    fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::Namespace(o) => &o.metadata,
            Object::ServiceAccount(o) => &o.metadata,
            Object::Role(o) => &o.metadata,
            Object::RoleBinding(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::PodDisruptionBudget(o) => &o.metadata,
        }
    }
}

/// The first place where `original` and its round trip through the typed value differ.
fn first_difference(path: &str, original: &Value, typed: &Value) -> Option<String> {
    match (original, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let here = format!("{path}.{key}");
                match b.get(key) {
                    None => {
                        return Some(format!(
                            "unknown field `{key}` at {here} (not part of the Kubernetes type)"
                        ));
                    }
                    Some(other) => {
                        if let Some(diff) = first_difference(&here, value, other) {
                            return Some(diff);
                        }
                    }
                }
            }
            b.keys()
                .find(|key| !a.contains_key(*key))
                .map(|key| format!("field `{key}` at {path} appears only after the round trip"))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(&format!("{path}[{i}]"), x, y)),
        (a, b) if a == b => None,
        (a, b) => Some(format!("{path}: `{a}` reads back as `{b}`")),
    }
}

/// Deserializes `value` into `T` and insists that serializing it again gives `value` back, so a
/// misspelt or misplaced field (which the Kubernetes types silently ignore) is an error.
fn strict<T: DeserializeOwned + Serialize>(value: &Value) -> Result<T, String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    match first_difference("", value, &back) {
        None => Ok(typed),
        Some(diff) => Err(diff),
    }
}

fn typed(value: &Value) -> Result<Object, String> {
    let api_version = value["apiVersion"].as_str().unwrap_or_default();
    let kind = value["kind"].as_str().unwrap_or_default();
    Ok(match (api_version, kind) {
        ("v1", "Namespace") => Object::Namespace(strict(value)?),
        ("v1", "ServiceAccount") => Object::ServiceAccount(strict(value)?),
        ("v1", "ConfigMap") => Object::ConfigMap(strict(value)?),
        ("v1", "Service") => Object::Service(strict(value)?),
        ("apps/v1", "Deployment") => Object::Deployment(strict(value)?),
        ("rbac.authorization.k8s.io/v1", "Role") => Object::Role(strict(value)?),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => Object::RoleBinding(strict(value)?),
        ("policy/v1", "PodDisruptionBudget") => Object::PodDisruptionBudget(strict(value)?),
        _ => {
            return Err(format!(
                "unexpected apiVersion `{api_version}` kind `{kind}`; \
                 extend controller/tests/integration/manifests.rs when adding a kind"
            ));
        }
    })
}

/// Every document of one multi-document YAML file, typed.
fn parse_file(file: &str, text: &str) -> Result<Vec<Object>, String> {
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| format!("{file}: {e}"))?;
    documents
        .iter()
        .enumerate()
        .map(|(i, document)| {
            if !document.is_object() {
                return Err(format!("{file}: document {}: not a mapping", i + 1));
            }
            typed(document).map_err(|e| format!("{file}: document {}: {e}", i + 1))
        })
        .collect()
}

/// All the manifests, by kind.
#[derive(Debug, Default)]
struct Manifests {
    namespaces: Vec<Namespace>,
    service_accounts: Vec<ServiceAccount>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    config_maps: Vec<ConfigMap>,
    deployments: Vec<Deployment>,
    services: Vec<Service>,
    pdbs: Vec<PodDisruptionBudget>,
    /// (kind, namespace, name) of every object, for uniqueness and namespace checks.
    ids: Vec<(&'static str, Option<String>, String)>,
}

/// The kustomize base: the manifests and their `kustomization.yaml`.
fn base_dir() -> PathBuf {
    repo().join("manifests/base")
}

/// The manifests, as the base's `kustomization.yaml` lists them (`kubectl apply -k` applies
/// exactly these; `kustomize.rs` checks that no manifest in the folder is left out).
fn manifest_files() -> Vec<PathBuf> {
    kustomize::Kustomization::read(&base_dir().join("kustomization.yaml"))
        .resources
        .iter()
        .map(|resource| base_dir().join(resource))
        .collect()
}

/// Adds the typed objects of one file to `all`.
fn collect(all: &mut Manifests, name: &str, objects: Vec<Object>) {
    assert!(!objects.is_empty(), "{name} holds no document");
    for object in objects {
        let meta = object.metadata();
        let name = meta.name.clone().expect("every object has a name");
        all.ids.push((object.kind(), meta.namespace.clone(), name));
        match object {
            Object::Namespace(o) => all.namespaces.push(*o),
            Object::ServiceAccount(o) => all.service_accounts.push(*o),
            Object::Role(o) => all.roles.push(*o),
            Object::RoleBinding(o) => all.role_bindings.push(*o),
            Object::ConfigMap(o) => all.config_maps.push(*o),
            Object::Deployment(o) => all.deployments.push(*o),
            Object::Service(o) => all.services.push(*o),
            Object::PodDisruptionBudget(o) => all.pdbs.push(*o),
        }
    }
}

fn load() -> Manifests {
    let mut all = Manifests::default();
    for path in manifest_files() {
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let objects = parse_file(&name, &text).unwrap_or_else(|e| panic!("{e}"));
        collect(&mut all, &name, objects);
    }
    all
}

// ---------------------------------------------------------------------------------------------
// Helpers over the typed objects.
// ---------------------------------------------------------------------------------------------

fn name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap()
}

fn namespace(meta: &ObjectMeta) -> &str {
    meta.namespace
        .as_deref()
        .unwrap_or_else(|| panic!("`{}` has no namespace", name(meta)))
}

fn pod_labels(deployment: &Deployment) -> &BTreeMap<String, String> {
    deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref())
        .unwrap_or_else(|| {
            panic!(
                "Deployment `{}` has no pod labels",
                name(&deployment.metadata)
            )
        })
}

fn pod_spec(deployment: &Deployment) -> &PodSpec {
    deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap_or_else(|| {
            panic!(
                "Deployment `{}` has no pod spec",
                name(&deployment.metadata)
            )
        })
}

fn deployment<'a>(all: &'a Manifests, wanted: &str) -> &'a Deployment {
    all.deployments
        .iter()
        .find(|d| name(&d.metadata) == wanted)
        .unwrap_or_else(|| panic!("no Deployment `{wanted}`"))
}

fn only_container(deployment: &Deployment) -> &Container {
    match pod_spec(deployment).containers.as_slice() {
        [only] => only,
        other => panic!(
            "Deployment `{}` has {} containers, expected one",
            name(&deployment.metadata),
            other.len()
        ),
    }
}

/// Kubernetes label-selector semantics (matchLabels and matchExpressions).
fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|req| {
        let values = req.values.clone().unwrap_or_default();
        let value = labels.get(&req.key);
        match req.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => panic!("unknown label selector operator `{other}`"),
        }
    });
    by_labels && by_expressions
}

fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
}

/// The Deployments whose pods `selector` selects, in `ns`.
fn selected<'a>(all: &'a Manifests, ns: &str, selector: &LabelSelector) -> Vec<&'a Deployment> {
    all.deployments
        .iter()
        .filter(|d| namespace(&d.metadata) == ns && selects(selector, pod_labels(d)))
        .collect()
}

/// The container port a Service `targetPort` or probe `port` designates, if any.
fn container_port(container: &Container, port: &IntOrString) -> Option<i32> {
    container.ports.iter().flatten().find_map(|p| match port {
        IntOrString::Int(n) => (p.container_port == *n).then_some(p.container_port),
        IntOrString::String(s) => {
            (p.name.as_deref() == Some(s.as_str())).then_some(p.container_port)
        }
    })
}

fn probes(container: &Container) -> Vec<(&'static str, &Probe)> {
    [
        ("startupProbe", &container.startup_probe),
        ("livenessProbe", &container.liveness_probe),
        ("readinessProbe", &container.readiness_probe),
    ]
    .into_iter()
    .filter_map(|(kind, probe)| probe.as_ref().map(|p| (kind, p)))
    .collect()
}

fn http_probe<'a>(container: &'a Container, probe: &'a Option<Probe>) -> (&'a str, i32) {
    let action = probe
        .as_ref()
        .and_then(|p| p.http_get.as_ref())
        .unwrap_or_else(|| panic!("container `{}` lacks an HTTP probe", container.name));
    let port = container_port(container, &action.port).unwrap_or_else(|| {
        panic!(
            "container `{}`: probe port {:?} is none of its ports",
            container.name, action.port
        )
    });
    (action.path.as_deref().unwrap_or("/"), port)
}

/// The container's environment as the kubelet resolves it for `$(VAR)` expansion: literal values
/// and the downward-API fields these manifests use.
fn environment(deployment: &Deployment, container: &Container) -> BTreeMap<String, String> {
    let pod_name = format!("{}-7d9c5b8f6-x2x4q", name(&deployment.metadata));
    container
        .env
        .iter()
        .flatten()
        .map(|var| {
            let value = match (&var.value, &var.value_from) {
                (Some(value), None) => value.clone(),
                (None, Some(from)) => {
                    let field = from
                        .field_ref
                        .as_ref()
                        .unwrap_or_else(|| panic!("env `{}`: only fieldRef is modelled", var.name));
                    match field.field_path.as_str() {
                        "metadata.namespace" => namespace(&deployment.metadata).to_owned(),
                        "metadata.name" => pod_name.clone(),
                        other => panic!("env `{}`: fieldRef `{other}` is not modelled", var.name),
                    }
                }
                _ => panic!(
                    "env `{}` needs exactly one of value and valueFrom",
                    var.name
                ),
            };
            (var.name.clone(), value)
        })
        .collect()
}

/// `$(VAR)` expansion of command and args; every reference must be defined (Kubernetes would
/// otherwise pass the text through unchanged).
fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find(')')
            .unwrap_or_else(|| panic!("unterminated `$(` in `{text}`"));
        let var = &after[..end];
        let value = env
            .get(var)
            .unwrap_or_else(|| panic!("`{text}` refers to `$({var})`, which is not in env"));
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The argv the container runs, after `$(VAR)` expansion.
fn argv(deployment: &Deployment, container: &Container) -> Vec<String> {
    let env = environment(deployment, container);
    let command = container
        .command
        .as_ref()
        .unwrap_or_else(|| panic!("container `{}` sets no command", container.name));
    command
        .iter()
        .chain(container.args.iter().flatten())
        .map(|arg| expand(arg, &env))
        .collect()
}

/// The value following `flag` (`--flag VALUE` or `--flag=VALUE`).
fn flag_value<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    argv.iter().enumerate().find_map(|(i, arg)| {
        if arg == flag {
            argv.get(i + 1).map(String::as_str)
        } else {
            arg.strip_prefix(flag)
                .and_then(|rest| rest.strip_prefix('='))
        }
    })
}

/// Files the container sees from ConfigMap volumes: absolute path → (ConfigMap, key).
fn config_map_files(
    all: &Manifests,
    deployment: &Deployment,
    container: &Container,
) -> BTreeMap<String, (String, String)> {
    let pod = pod_spec(deployment);
    let ns = namespace(&deployment.metadata);
    let mut files = BTreeMap::new();
    for mount in container.volume_mounts.iter().flatten() {
        let volume = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .unwrap_or_else(|| {
                panic!(
                    "container `{}` mounts volume `{}`, which the pod does not declare",
                    container.name, mount.name
                )
            });
        let Some(source) = &volume.config_map else {
            continue;
        };
        assert!(
            mount.sub_path.is_none(),
            "subPath mounts of ConfigMaps do not update; mount the whole volume"
        );
        let config_map = all
            .config_maps
            .iter()
            .find(|c| name(&c.metadata) == source.name && namespace(&c.metadata) == ns)
            .unwrap_or_else(|| {
                panic!(
                    "volume `{}` refers to ConfigMap `{}`, which is not in namespace `{ns}`",
                    volume.name, source.name
                )
            });
        let keys: BTreeSet<&String> = config_map.data.iter().flatten().map(|(k, _)| k).collect();
        let projected: Vec<(String, String)> = match &source.items {
            Some(items) => items
                .iter()
                .map(|item| {
                    assert!(
                        keys.contains(&item.key),
                        "volume `{}` projects key `{}`, which ConfigMap `{}` lacks (it has {keys:?})",
                        volume.name,
                        item.key,
                        source.name
                    );
                    (item.path.clone(), item.key.clone())
                })
                .collect(),
            None => keys.iter().map(|k| ((*k).clone(), (*k).clone())).collect(),
        };
        for (path, key) in projected {
            let full = format!("{}/{}", mount.mount_path.trim_end_matches('/'), path);
            files.insert(full, (source.name.clone(), key));
        }
    }
    files
}

fn config_map_value<'a>(all: &'a Manifests, config_map: &str, key: &str) -> &'a str {
    all.config_maps
        .iter()
        .find(|c| name(&c.metadata) == config_map)
        .and_then(|c| c.data.as_ref())
        .and_then(|data| data.get(key))
        .unwrap_or_else(|| panic!("ConfigMap `{config_map}` has no key `{key}`"))
}

/// Whether `role` grants `verb` on `group`/`resource`.
fn grants(role: &Role, group: &str, resource: &str, verb: &str) -> bool {
    role.rules.iter().flatten().any(|rule| {
        let has = |list: &Option<Vec<String>>, wanted: &str| {
            list.iter().flatten().any(|x| x == wanted || x == "*")
        };
        has(&rule.api_groups, group)
            && has(&rule.resources, resource)
            && rule.verbs.iter().any(|v| v == verb || v == "*")
            && rule.resource_names.as_ref().is_none_or(Vec::is_empty)
    })
}

/// The Roles bound to ServiceAccount `sa` in `ns`.
fn roles_of<'a>(all: &'a Manifests, ns: &str, sa: &str) -> Vec<&'a Role> {
    all.role_bindings
        .iter()
        .filter(|b| namespace(&b.metadata) == ns)
        .filter(|b| {
            b.subjects.iter().flatten().any(|s| {
                s.kind == "ServiceAccount"
                    && s.name == sa
                    && s.namespace.as_deref().unwrap_or(ns) == ns
            })
        })
        .filter_map(|b| {
            all.roles.iter().find(|r| {
                b.role_ref.kind == "Role"
                    && name(&r.metadata) == b.role_ref.name
                    && namespace(&r.metadata) == ns
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------------------

#[test]
fn every_document_is_a_known_kind_without_unknown_fields() {
    let files: Vec<String> = manifest_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "00-namespace.yaml",
        "10-rbac.yaml",
        "20-configmap.yaml",
        "30-controller.yaml",
        "40-worker.yaml",
        "50-pdb.yaml",
    ] {
        assert!(
            files.iter().any(|f| f == expected),
            "missing manifests/base/{expected}"
        );
    }

    let all = load();
    assert_eq!(all.namespaces.len(), 1, "one Namespace");
    assert_eq!(
        all.service_accounts.len(),
        2,
        "controller and worker ServiceAccounts"
    );
    assert_eq!(all.roles.len(), 1);
    assert_eq!(all.role_bindings.len(), 1);
    assert_eq!(all.config_maps.len(), 1);
    assert_eq!(
        all.deployments.len(),
        2,
        "controller and worker Deployments"
    );
    assert_eq!(
        all.services.len(),
        2,
        "a metrics Service for each Deployment"
    );
    assert_eq!(
        all.pdbs.len(),
        2,
        "a PodDisruptionBudget for each Deployment"
    );

    let mut seen = BTreeSet::new();
    for id in &all.ids {
        assert!(seen.insert(id), "{id:?} is declared twice");
    }
}

#[test]
fn misspelt_fields_wrong_api_versions_and_unknown_kinds_are_rejected() {
    let good = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: ns}\n\
                spec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    \
                spec: {containers: [{name: c, image: i}]}\n";
    let objects = parse_file("good.yaml", good).unwrap();
    assert!(matches!(objects.as_slice(), [Object::Deployment(_)]));

    let typo = good.replace("spec:\n  selector", "spec:\n  replica: 2\n  selector");
    let err = parse_file("typo.yaml", &typo).unwrap_err();
    assert!(
        err.contains("unknown field `replica` at .spec.replica"),
        "{err}"
    );

    let nested = good.replace(
        "image: i",
        "image: i, imagePullPolicy: Always, readOnly: true",
    );
    let err = parse_file("nested.yaml", &nested).unwrap_err();
    assert!(err.contains("unknown field `readOnly`"), "{err}");

    let wrong_type = good.replace("metadata: {name: d,", "metadata: {name: [d],");
    assert!(parse_file("type.yaml", &wrong_type).is_err());

    let version = good.replace("apps/v1", "apps/v1beta1");
    let err = parse_file("version.yaml", &version).unwrap_err();
    assert!(
        err.contains("unexpected apiVersion `apps/v1beta1`"),
        "{err}"
    );

    let unknown = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n";
    let err = parse_file("unknown.yaml", unknown).unwrap_err();
    assert!(err.contains("kind `Secret`"), "{err}");

    let second = format!("{good}---\n{unknown}");
    let err = parse_file("multi.yaml", &second).unwrap_err();
    assert!(err.contains("document 2"), "{err}");
}

#[test]
fn namespaced_objects_live_in_the_namespace_the_manifests_create() {
    let all = load();
    let ns = name(&all.namespaces[0].metadata);
    assert_eq!(ns, "ballast");
    for (kind, namespace, object) in &all.ids {
        if *kind == "Namespace" {
            assert!(
                namespace.is_none(),
                "Namespace `{object}` is cluster-scoped"
            );
        } else {
            assert_eq!(
                namespace.as_deref(),
                Some(ns),
                "{kind} `{object}` must set metadata.namespace: {ns}"
            );
        }
    }
    for binding in &all.role_bindings {
        for subject in binding.subjects.iter().flatten() {
            assert_eq!(subject.namespace.as_deref(), Some(ns), "{subject:?}");
        }
    }
}

#[test]
fn selectors_match_the_pods_of_exactly_one_deployment() {
    let all = load();
    for d in &all.deployments {
        let dname = name(&d.metadata);
        let selector = &d.spec.as_ref().unwrap().selector;
        assert!(
            !selector_is_empty(selector),
            "Deployment `{dname}` has an empty selector"
        );
        assert!(
            selects(selector, pod_labels(d)),
            "Deployment `{dname}`: selector {selector:?} does not match its pod labels {:?}",
            pod_labels(d)
        );
        let matched = selected(&all, namespace(&d.metadata), selector);
        assert_eq!(
            matched.len(),
            1,
            "Deployment `{dname}`'s selector also matches other Deployments' pods"
        );
        for spread in pod_spec(d).topology_spread_constraints.iter().flatten() {
            let own = spread.label_selector.as_ref().unwrap();
            assert!(
                selects(own, pod_labels(d)),
                "`{dname}`: topology spread selects other pods"
            );
        }
    }

    for service in &all.services {
        let sname = name(&service.metadata);
        let spec = service.spec.as_ref().unwrap();
        let selector = LabelSelector {
            match_labels: spec.selector.clone(),
            match_expressions: None,
        };
        assert!(
            !selector_is_empty(&selector),
            "Service `{sname}` has no selector"
        );
        let matched = selected(&all, namespace(&service.metadata), &selector);
        let [target] = matched.as_slice() else {
            panic!(
                "Service `{sname}` selects {} Deployments, expected one",
                matched.len()
            );
        };
        let ports = spec.ports.as_ref().unwrap();
        assert!(!ports.is_empty(), "Service `{sname}` has no ports");
        for port in ports {
            let target_port = port.target_port.as_ref().unwrap_or_else(|| {
                panic!("Service `{sname}`: set targetPort to a named container port")
            });
            assert!(
                matches!(target_port, IntOrString::String(_)),
                "Service `{sname}`: target a port by name, not number"
            );
            let containers = &pod_spec(target).containers;
            let numbers: Vec<i32> = containers
                .iter()
                .filter_map(|c| container_port(c, target_port))
                .collect();
            assert_eq!(
                numbers.len(),
                1,
                "Service `{sname}`: targetPort {target_port:?} names no port of `{}`",
                name(&target.metadata)
            );
            assert_eq!(
                port.port, numbers[0],
                "Service `{sname}` exposes the container's port number"
            );
            assert_eq!(port.name.as_deref(), Some("metrics"));
        }
    }

    for pdb in &all.pdbs {
        let pname = name(&pdb.metadata);
        let spec = pdb.spec.as_ref().unwrap();
        let selector = spec.selector.as_ref().unwrap();
        assert!(
            !selector_is_empty(selector),
            "PDB `{pname}` has an empty selector"
        );
        let matched = selected(&all, namespace(&pdb.metadata), selector);
        assert_eq!(
            matched.len(),
            1,
            "PDB `{pname}` must cover exactly one Deployment"
        );
        assert!(
            spec.min_available.is_some() != spec.max_unavailable.is_some(),
            "PDB `{pname}`: set one of minAvailable and maxUnavailable"
        );
    }
    let controller_pdb = all
        .pdbs
        .iter()
        .find(|p| {
            let sel = p.spec.as_ref().unwrap().selector.as_ref().unwrap();
            selects(sel, pod_labels(deployment(&all, CONTROLLER)))
        })
        .expect("a PDB for the controller");
    assert_eq!(
        controller_pdb.spec.as_ref().unwrap().min_available,
        Some(IntOrString::Int(1))
    );
    assert!(
        all.pdbs.iter().any(|p| {
            let sel = p.spec.as_ref().unwrap().selector.as_ref().unwrap();
            selects(sel, pod_labels(deployment(&all, WORKER)))
        }),
        "a PDB for the workers"
    );
}

#[test]
fn service_accounts_rbac_and_irsa_fit_together() {
    let all = load();
    let ns = name(&all.namespaces[0].metadata);
    let accounts: BTreeMap<&str, &ServiceAccount> = all
        .service_accounts
        .iter()
        .map(|sa| (name(&sa.metadata), sa))
        .collect();

    // Every pod runs as a ServiceAccount of its namespace, and each Deployment has its own.
    let mut used = BTreeSet::new();
    for d in &all.deployments {
        let pod = pod_spec(d);
        let sa = pod.service_account_name.as_deref().unwrap_or_else(|| {
            panic!(
                "Deployment `{}` sets no serviceAccountName",
                name(&d.metadata)
            )
        });
        assert!(
            accounts.contains_key(sa),
            "ServiceAccount `{sa}` does not exist"
        );
        assert_eq!(namespace(&accounts[sa].metadata), namespace(&d.metadata));
        assert!(
            used.insert(sa),
            "ServiceAccount `{sa}` is shared by two Deployments"
        );
    }

    // IRSA: each ServiceAccount carries a well-formed role ARN of its own.
    let mut arns = BTreeSet::new();
    for (sa_name, sa) in &accounts {
        let arn = sa
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(IRSA_ANNOTATION))
            .unwrap_or_else(|| panic!("ServiceAccount `{sa_name}` lacks {IRSA_ANNOTATION}"));
        let role = arn
            .strip_prefix("arn:aws:iam::")
            .and_then(|rest| rest.split_once(":role/"))
            .unwrap_or_else(|| panic!("`{arn}` is not an IAM role ARN"));
        assert!(
            role.0.len() == 12 && role.0.bytes().all(|b| b.is_ascii_digit()),
            "`{arn}`: the account id has 12 digits"
        );
        assert_eq!(
            role.1, *sa_name,
            "the placeholder role is named after its ServiceAccount"
        );
        assert!(arns.insert(arn.clone()), "`{arn}` is used twice");
    }

    // Every RoleBinding refers to an existing Role and existing ServiceAccounts.
    for binding in &all.role_bindings {
        let bname = name(&binding.metadata);
        assert_eq!(binding.role_ref.api_group, "rbac.authorization.k8s.io");
        assert_eq!(binding.role_ref.kind, "Role", "RoleBinding `{bname}`");
        assert!(
            all.roles
                .iter()
                .any(|r| name(&r.metadata) == binding.role_ref.name
                    && namespace(&r.metadata) == namespace(&binding.metadata)),
            "RoleBinding `{bname}` refers to missing Role `{}`",
            binding.role_ref.name
        );
        let subjects = binding.subjects.as_ref().unwrap();
        assert!(!subjects.is_empty());
        for subject in subjects {
            assert_eq!(subject.kind, "ServiceAccount");
            assert!(
                accounts.contains_key(subject.name.as_str()),
                "RoleBinding `{bname}` binds missing ServiceAccount `{}`",
                subject.name
            );
        }
    }

    // The controller may run leader election and scale Deployments; nothing more.
    let controller_sa = pod_spec(deployment(&all, CONTROLLER))
        .service_account_name
        .as_deref()
        .unwrap();
    let roles = roles_of(&all, ns, controller_sa);
    let allowed = |group: &str, resource: &str, verb: &str| {
        roles.iter().any(|r| grants(r, group, resource, verb))
    };
    for verb in ["get", "list", "watch", "create", "update", "patch"] {
        assert!(
            allowed("coordination.k8s.io", "leases", verb),
            "leases: {verb}"
        );
    }
    for verb in ["get", "list", "watch"] {
        assert!(allowed("apps", "deployments", verb), "deployments: {verb}");
    }
    for verb in ["get", "update", "patch"] {
        assert!(
            allowed("apps", "deployments/scale", verb),
            "deployments/scale: {verb}"
        );
    }
    for (group, resource, verb) in [
        ("apps", "deployments", "update"),
        ("apps", "deployments", "delete"),
        ("coordination.k8s.io", "leases", "delete"),
        ("", "secrets", "get"),
        ("", "pods", "list"),
    ] {
        assert!(
            !allowed(group, resource, verb),
            "the controller must not {verb} {resource}"
        );
    }
    for role in &all.roles {
        for rule in role.rules.iter().flatten() {
            let wild = |l: &Option<Vec<String>>| l.iter().flatten().any(|x| x == "*");
            assert!(
                !wild(&rule.api_groups)
                    && !wild(&rule.resources)
                    && !rule.verbs.iter().any(|v| v == "*"),
                "Role `{}` uses a wildcard",
                name(&role.metadata)
            );
        }
    }

    // The worker needs no Kubernetes API access at all.
    let worker_pod = pod_spec(deployment(&all, WORKER));
    let worker_sa = worker_pod.service_account_name.as_deref().unwrap();
    assert!(
        roles_of(&all, ns, worker_sa).is_empty(),
        "the worker is bound to no Role"
    );
    assert_eq!(worker_pod.automount_service_account_token, Some(false));
    assert_eq!(
        accounts[worker_sa].automount_service_account_token,
        Some(false)
    );
    assert_ne!(
        pod_spec(deployment(&all, CONTROLLER)).automount_service_account_token,
        Some(false),
        "the controller talks to the API server"
    );
}

#[test]
fn the_config_map_is_the_blueprint_on_disk_and_every_referenced_file_is_mounted() {
    let all = load();
    let on_disk = std::fs::read_to_string(repo().join("blueprints/banking.yaml")).unwrap();
    let in_map = config_map_value(&all, "ballast-blueprints", "banking.yaml");
    assert!(
        in_map == on_disk,
        "manifests/base/20-configmap.yaml `banking.yaml` differs from blueprints/banking.yaml; \
         regenerate it as manifests/README.md (\"Updating the blueprint\") shows"
    );

    // Every blueprint in a ConfigMap is valid.
    for config_map in &all.config_maps {
        for (key, text) in config_map.data.iter().flatten() {
            if key.ends_with(".yaml") || key.ends_with(".yml") {
                let loaded = ballast_blueprint::parse(key, text).unwrap_or_else(|e| {
                    panic!("ConfigMap key `{key}` is not a valid blueprint:\n{e}")
                });
                assert_eq!(
                    loaded.blueprint.metadata.name,
                    key.trim_end_matches(".yaml")
                );
            }
        }
    }

    for d in &all.deployments {
        let pod = pod_spec(d);
        let volumes: BTreeSet<&str> = pod
            .volumes
            .iter()
            .flatten()
            .map(|v| v.name.as_str())
            .collect();
        let mut mounted = BTreeSet::new();
        for container in &pod.containers {
            let files = config_map_files(&all, d, container);
            assert!(
                files.contains_key("/etc/ballast/banking.yaml"),
                "`{}` does not see the blueprint at /etc/ballast/banking.yaml",
                container.name
            );
            for mount in container.volume_mounts.iter().flatten() {
                assert!(volumes.contains(mount.name.as_str()));
                mounted.insert(mount.name.as_str());
                let volume = pod
                    .volumes
                    .iter()
                    .flatten()
                    .find(|v| v.name == mount.name)
                    .unwrap();
                if volume.config_map.is_some() {
                    assert_eq!(
                        mount.read_only,
                        Some(true),
                        "mount `{}` read-only",
                        mount.name
                    );
                }
            }
            // Every file argument under a ConfigMap mount names a projected key.
            let mount_points: Vec<&str> = container
                .volume_mounts
                .iter()
                .flatten()
                .filter(|m| {
                    pod.volumes
                        .iter()
                        .flatten()
                        .any(|v| v.name == m.name && v.config_map.is_some())
                })
                .map(|m| m.mount_path.as_str())
                .collect();
            let args = argv(d, container);
            let mut referenced = 0;
            for arg in &args[1..] {
                let value = arg.split_once('=').map_or(arg.as_str(), |(_, v)| v);
                if mount_points
                    .iter()
                    .any(|m| value.starts_with(&format!("{m}/")))
                {
                    let (map, key) = files.get(value).unwrap_or_else(|| {
                        panic!(
                            "`{}` refers to `{value}`, which no ConfigMap key provides",
                            container.name
                        )
                    });
                    let text = config_map_value(&all, map, key);
                    assert!(ballast_blueprint::parse(value, text).is_ok());
                    referenced += 1;
                }
            }
            assert!(
                referenced > 0,
                "`{}` reads no file from its ConfigMap mount",
                container.name
            );
        }
        assert_eq!(
            mounted,
            volumes,
            "Deployment `{}` declares volumes it never mounts",
            name(&d.metadata)
        );
    }
}

#[test]
fn pods_are_hardened_and_sized() {
    let all = load();
    let controller = deployment(&all, CONTROLLER);
    assert_eq!(
        controller.spec.as_ref().unwrap().replicas,
        Some(2),
        "two controller replicas"
    );

    let version = env!("CARGO_PKG_VERSION");
    for d in &all.deployments {
        let dname = name(&d.metadata);
        let pod = pod_spec(d);
        let psc = pod
            .security_context
            .as_ref()
            .unwrap_or_else(|| panic!("`{dname}`: pod securityContext"));
        assert_eq!(psc.run_as_non_root, Some(true), "`{dname}`");
        assert_eq!(psc.run_as_user, Some(65532), "`{dname}`");
        assert_eq!(
            psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
            Some("RuntimeDefault")
        );
        assert_ne!(pod.host_network, Some(true));
        assert_ne!(pod.host_pid, Some(true));

        for c in pod
            .containers
            .iter()
            .chain(pod.init_containers.iter().flatten())
        {
            let what = format!("`{dname}` container `{}`", c.name);
            let sc = c
                .security_context
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: securityContext"));
            assert_eq!(sc.run_as_non_root, Some(true), "{what}");
            assert_eq!(sc.run_as_user, Some(65532), "{what}");
            assert_eq!(sc.read_only_root_filesystem, Some(true), "{what}");
            assert_eq!(sc.allow_privilege_escalation, Some(false), "{what}");
            assert_ne!(sc.privileged, Some(true), "{what}");
            let caps = sc.capabilities.as_ref().unwrap();
            assert_eq!(
                caps.drop.as_deref(),
                Some(&["ALL".to_owned()][..]),
                "{what}"
            );
            assert!(
                caps.add.as_ref().is_none_or(Vec::is_empty),
                "{what}: adds capabilities"
            );
            assert_eq!(
                sc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
                Some("RuntimeDefault")
            );

            let resources = c
                .resources
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: resources"));
            for (kind, map) in [
                ("requests", &resources.requests),
                ("limits", &resources.limits),
            ] {
                let map = map.as_ref().unwrap_or_else(|| panic!("{what}: no {kind}"));
                for resource in ["cpu", "memory"] {
                    assert!(map.contains_key(resource), "{what}: {kind}.{resource}");
                }
            }

            let image = c.image.as_deref().unwrap();
            let (repository, tag) = image
                .rsplit_once(':')
                .unwrap_or_else(|| panic!("{what}: `{image}` has no tag"));
            assert!(
                repository.starts_with("ghcr.io/ballast-dev/"),
                "{what}: `{image}`"
            );
            assert_eq!(
                tag, version,
                "{what}: the image tag is the workspace version"
            );
        }
    }
}

#[test]
fn probes_and_metrics_addresses_use_the_declared_ports() {
    let all = load();
    for d in &all.deployments {
        for c in &pod_spec(d).containers {
            let metrics = container_port(c, &IntOrString::String("metrics".into()))
                .unwrap_or_else(|| panic!("`{}` has no port named `metrics`", c.name));
            for (kind, probe) in probes(c) {
                let action = probe
                    .http_get
                    .as_ref()
                    .unwrap_or_else(|| panic!("`{}` {kind}: httpGet", c.name));
                assert_eq!(
                    container_port(c, &action.port),
                    Some(metrics),
                    "`{}` {kind}: port {:?} is not the metrics port",
                    c.name,
                    action.port
                );
            }
            // The binary listens on all interfaces on exactly the declared port.
            let args = argv(d, c);
            let addr: SocketAddr = flag_value(&args, "--metrics-addr")
                .unwrap_or_else(|| panic!("`{}` passes no --metrics-addr", c.name))
                .parse()
                .unwrap();
            assert!(
                addr.ip().is_unspecified(),
                "`{}`: {addr} is unreachable for the kubelet",
                c.name
            );
            assert_eq!(
                i32::from(addr.port()),
                metrics,
                "`{}`: --metrics-addr port",
                c.name
            );
        }
    }

    let controller = only_container(deployment(&all, CONTROLLER));
    assert_eq!(
        http_probe(controller, &controller.liveness_probe).0,
        "/healthz"
    );
    assert_eq!(
        http_probe(controller, &controller.readiness_probe).0,
        "/readyz"
    );
    // `ballast-worker consume`: /healthz says the process answers, /readyz that its receive
    // loop makes progress (the watchdog).
    let worker = only_container(deployment(&all, WORKER));
    assert_eq!(http_probe(worker, &worker.liveness_probe).0, "/healthz");
    assert_eq!(http_probe(worker, &worker.readiness_probe).0, "/readyz");
}

#[test]
fn the_controller_command_line_is_one_ballast_accepts() {
    let all = load();
    let d = deployment(&all, CONTROLLER);
    let c = only_container(d);
    let args = argv(d, c);
    assert!(args[0].ends_with("/ballast"), "{args:?}");

    let parsed = ballast_controller::cli::Cli::try_parse_from(&args);
    if let Err(e) = &parsed {
        panic!("`ballast` rejects the manifest's arguments {args:?}:\n{e}");
    }
    let matches = ballast_controller::cli::Cli::command()
        .try_get_matches_from(&args)
        .unwrap();
    assert_eq!(matches.subcommand_name(), Some("run"), "{args:?}");

    // Leader election uses a Lease in the pod's own namespace, where the Role grants leases to
    // the pod's ServiceAccount.
    let lease_ns = flag_value(&args, "--lease-namespace").expect("--lease-namespace");
    assert_eq!(lease_ns, namespace(&d.metadata));
    let sa = pod_spec(d).service_account_name.as_deref().unwrap();
    assert!(
        roles_of(&all, lease_ns, sa).iter().any(|r| grants(
            r,
            "coordination.k8s.io",
            "leases",
            "update"
        )),
        "no Role in `{lease_ns}` lets `{sa}` hold the Lease"
    );
    let env = environment(d, c);
    assert!(
        env.contains_key("POD_NAME"),
        "the lease holder identity comes from POD_NAME"
    );
    assert!(
        !args.iter().any(|a| a == "--dry-run"),
        "the deployed controller acts"
    );
}

#[test]
fn the_worker_command_line_is_one_ballast_worker_accepts() {
    use ballast_worker::cli::{Cli, Command};

    let all = load();
    let d = deployment(&all, WORKER);
    let c = only_container(d);
    let args = argv(d, c);
    assert!(args[0].ends_with("/ballast-worker"), "{args:?}");

    let cli = Cli::try_parse_from(&args)
        .unwrap_or_else(|e| panic!("`ballast-worker` rejects {args:?}:\n{e}"));
    let Command::Consume(consume) = cli.command else {
        panic!("the worker runs `consume`: {args:?}");
    };
    let blueprint = consume.target.blueprint.as_ref().expect("--blueprint");
    let files = config_map_files(&all, d, c);
    assert!(
        files.contains_key(blueprint.to_str().unwrap()),
        "--blueprint {} is not mounted from the ConfigMap",
        blueprint.display()
    );
    assert!(
        consume.no_fleet,
        "no EC2 scale-in protection or lifecycle hooks on Kubernetes"
    );
    assert!(consume.instance_id.is_none());
    let metrics = container_port(c, &IntOrString::String("metrics".into())).unwrap();
    assert_eq!(i32::from(consume.metrics_addr.port()), metrics);
    // The workers finish their messages in flight before the kubelet kills them.
    let grace = pod_spec(d).termination_grace_period_seconds.unwrap();
    let bp = ballast_blueprint::parse(
        "banking.yaml",
        config_map_value(&all, "ballast-blueprints", "banking.yaml"),
    )
    .unwrap()
    .blueprint;
    let queue = bp
        .queue(&consume.target.queue)
        .expect("the worker's queue is in the blueprint");
    let visibility = queue.visibility_timeout.as_secs();
    assert!(
        u64::try_from(grace).unwrap()
            >= visibility + u64::try_from(consume.wait_time_seconds).unwrap(),
        "terminationGracePeriodSeconds {grace} < visibility timeout {visibility}s + long poll"
    );
}

#[test]
fn the_controller_may_scale_the_worker_deployment_and_every_deployment_fleet() {
    let all = load();
    let controller = deployment(&all, CONTROLLER);
    let sa = pod_spec(controller)
        .service_account_name
        .as_deref()
        .unwrap();

    let can_scale = |ns: &str| {
        let roles = roles_of(&all, ns, sa);
        ["get", "update", "patch"].iter().all(|verb| {
            roles
                .iter()
                .any(|r| grants(r, "apps", "deployments/scale", verb))
        }) && roles
            .iter()
            .any(|r| grants(r, "apps", "deployments", "get"))
    };

    // The worker Deployment is a valid Kubernetes fleet target for a scaling policy.
    let worker = deployment(&all, WORKER);
    assert!(can_scale(namespace(&worker.metadata)));

    // Any scaling policy of a mounted blueprint that targets a Deployment targets one of these,
    // in a namespace where the controller is allowed to scale it.
    for config_map in &all.config_maps {
        for (key, text) in config_map.data.iter().flatten() {
            let bp = ballast_blueprint::parse(key, text).unwrap().blueprint;
            for policy in &bp.spec.scaling_policies {
                if let Some(target) = &policy.deployment {
                    assert!(
                        all.deployments
                            .iter()
                            .any(|d| name(&d.metadata) == target.name
                                && namespace(&d.metadata) == target.namespace),
                        "policy `{}` scales Deployment {}/{}, which the manifests do not create",
                        policy.name,
                        target.namespace,
                        target.name
                    );
                    assert!(
                        can_scale(&target.namespace),
                        "policy `{}`: no RBAC",
                        policy.name
                    );
                }
            }
        }
    }
}
