//! The kustomize files: the base `manifests/base/kustomization.yaml` lists every manifest and
//! declares the image names an overlay sets; the example overlay
//! `manifests/overlays/example/` sets the images and the IAM role ARNs of objects the base has.
//! The overlay is rendered here (images, strategic-merge patches of mappings) and the result is
//! parsed into the typed objects; where `kubectl` is installed, its `kubectl kustomize` output
//! must be the same objects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

use super::{
    CONTROLLER, IRSA_ANNOTATION, Manifests, WORKER, base_dir, collect, load, manifest_files, name,
    parse_file, repo,
};

/// A `kustomization.yaml`, with only the fields these files use: anything else (a misspelt
/// field, a transformer the checks below do not model) fails to parse.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Kustomization {
    api_version: String,
    kind: String,
    #[serde(default)]
    pub(super) resources: Vec<String>,
    #[serde(default)]
    images: Vec<Image>,
    #[serde(default)]
    patches: Vec<Patch>,
}

/// One `images:` entry: the name as the manifests spell it, and what an overlay sets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Image {
    name: String,
    new_name: Option<String>,
    new_tag: Option<String>,
}

/// One `patches:` entry: a strategic-merge patch in a file beside the kustomization.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    path: String,
}

impl Kustomization {
    pub(super) fn read(path: &Path) -> Self {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let kustomization: Self =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            kustomization.api_version,
            "kustomize.config.k8s.io/v1beta1",
            "{}",
            path.display()
        );
        assert_eq!(kustomization.kind, "Kustomization", "{}", path.display());
        kustomization
    }
}

fn overlay_dir() -> PathBuf {
    repo().join("manifests/overlays/example")
}

/// `repository:tag` → (repository, tag).
fn split_image(image: &str) -> (&str, &str) {
    image
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("`{image}` has no tag"))
}

/// The image repositories the base's Deployments run.
fn base_image_repositories(all: &Manifests) -> Vec<String> {
    let mut repositories: Vec<String> = all
        .deployments
        .iter()
        .flat_map(|d| super::pod_spec(d).containers.iter())
        .map(|c| split_image(c.image.as_deref().unwrap()).0.to_owned())
        .collect();
    repositories.sort();
    repositories.dedup();
    repositories
}

/// Every YAML file in `dir`, by file name.
fn yaml_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_base_lists_every_manifest_and_declares_the_images_the_deployments_run() {
    let base = Kustomization::read(&base_dir().join("kustomization.yaml"));
    for path in manifest_files() {
        assert!(
            path.is_file(),
            "kustomization lists missing {}",
            path.display()
        );
    }
    let mut listed = base.resources.clone();
    listed.sort();
    let on_disk: Vec<String> = yaml_files(&base_dir())
        .into_iter()
        .filter(|f| f != "kustomization.yaml")
        .collect();
    assert_eq!(
        listed, on_disk,
        "manifests/base/kustomization.yaml must list exactly the manifests in manifests/base/"
    );
    assert!(base.patches.is_empty(), "the base patches nothing");

    // `kubectl apply -k manifests/` is the base, unchanged.
    let top = Kustomization::read(&repo().join("manifests/kustomization.yaml"));
    assert_eq!(top.resources, ["base"]);
    assert!(top.images.is_empty() && top.patches.is_empty());

    let mut declared: Vec<String> = base.images.iter().map(|i| i.name.clone()).collect();
    declared.sort();
    assert_eq!(
        declared,
        base_image_repositories(&load()),
        "the base's `images:` names are the image repositories of its Deployments"
    );
    for image in &base.images {
        assert!(
            image.new_name.is_none() && image.new_tag.is_none(),
            "the base only declares `{}`; overlays set it",
            image.name
        );
    }
}

/// Merges `patch` into `target` as a strategic-merge patch does for mappings and scalars (the
/// example's patches set annotations; a list in a patch would need merge keys, refused here).
fn merge(target: &mut Value, patch: &Value, at: &str) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                let here = format!("{at}.{key}");
                match target.get_mut(key) {
                    Some(existing) if value.is_object() => merge(existing, value, &here),
                    _ => {
                        assert!(
                            !value.is_array(),
                            "{here}: a list in a patch is not modelled by this test"
                        );
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (_, _) => panic!("{at}: a patch must be a mapping"),
    }
}

fn identity(document: &Value) -> (String, String, String) {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (
        text(&document["kind"]),
        text(&document["metadata"]["namespace"]),
        text(&document["metadata"]["name"]),
    )
}

fn documents(file: &str, text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The example overlay applied to the base: its images, then its patches.
fn render_example_overlay() -> Vec<Value> {
    let overlay = Kustomization::read(&overlay_dir().join("kustomization.yaml"));
    assert_eq!(
        overlay.resources,
        ["../../base"],
        "the example overlay builds on the base"
    );
    assert_eq!(
        overlay_dir().join("../../base").canonicalize().unwrap(),
        base_dir().canonicalize().unwrap()
    );
    let images: BTreeMap<&str, &Image> = overlay
        .images
        .iter()
        .map(|i| (i.name.as_str(), i))
        .collect();

    let mut rendered: Vec<Value> = manifest_files()
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            documents(&path.display().to_string(), &text)
        })
        .collect();
    for document in &mut rendered {
        let Some(containers) = document
            .pointer_mut("/spec/template/spec/containers")
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for container in containers {
            let image = container["image"].as_str().unwrap().to_owned();
            let (repository, tag) = split_image(&image);
            if let Some(set) = images.get(repository) {
                let repository = set.new_name.as_deref().unwrap_or(repository);
                let tag = set.new_tag.as_deref().unwrap_or(tag);
                container["image"] = Value::String(format!("{repository}:{tag}"));
            }
        }
    }
    for patch in &overlay.patches {
        let path = overlay_dir().join(&patch.path);
        assert!(
            path.is_file(),
            "the overlay patches with missing {}",
            path.display()
        );
        let text = std::fs::read_to_string(&path).unwrap();
        // The patch is itself a valid object of its kind (no misspelt field).
        parse_file(&patch.path, &text).unwrap_or_else(|e| panic!("{e}"));
        for document in documents(&patch.path, &text) {
            let id = identity(&document);
            let target = rendered
                .iter_mut()
                .find(|d| identity(d) == id)
                .unwrap_or_else(|| panic!("{}: patches {id:?}, which the base lacks", patch.path));
            merge(target, &document, &patch.path);
        }
    }
    rendered
}

fn typed_manifests(documents: &[Value], origin: &str) -> Manifests {
    let mut all = Manifests::default();
    for (i, document) in documents.iter().enumerate() {
        let object =
            super::typed(document).unwrap_or_else(|e| panic!("{origin}: document {}: {e}", i + 1));
        collect(&mut all, origin, vec![object]);
    }
    all
}

#[test]
fn the_example_overlay_sets_the_images_and_role_arns_of_objects_the_base_has() {
    let base = Kustomization::read(&base_dir().join("kustomization.yaml"));
    let overlay = Kustomization::read(&overlay_dir().join("kustomization.yaml"));
    for image in &overlay.images {
        assert!(
            base.images.iter().any(|b| b.name == image.name),
            "the overlay sets `{}`, which the base does not declare",
            image.name
        );
        assert!(image.new_name.is_some(), "`{}`: newName", image.name);
        assert_eq!(
            image.new_tag.as_deref(),
            Some(env!("CARGO_PKG_VERSION")),
            "`{}`: the example deploys this version",
            image.name
        );
    }
    assert_eq!(overlay.images.len(), base.images.len(), "both images set");

    let rendered = render_example_overlay();
    let all = typed_manifests(&rendered, "the rendered example overlay");
    let base = load();
    assert_eq!(all.ids, base.ids, "the overlay adds and removes no object");

    for d in &all.deployments {
        for c in &super::pod_spec(d).containers {
            let image = c.image.as_deref().unwrap();
            let repository = split_image(image).0;
            let expected = overlay
                .images
                .iter()
                .find_map(|i| {
                    (repository == i.new_name.as_deref().unwrap()).then_some(i.new_name.clone())
                })
                .flatten();
            assert_eq!(
                expected.as_deref(),
                Some(repository),
                "`{}`: `{image}` is not an image the overlay sets",
                name(&d.metadata)
            );
        }
    }
    for (sa, role) in [
        (CONTROLLER, "example-ballast-controller"),
        (WORKER, "example-ballast-worker"),
    ] {
        let account = all
            .service_accounts
            .iter()
            .find(|s| name(&s.metadata) == sa)
            .unwrap();
        let arn = account
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(IRSA_ANNOTATION))
            .unwrap_or_else(|| panic!("ServiceAccount `{sa}` lost its role annotation"));
        assert_eq!(arn, &format!("arn:aws:iam::123456789012:role/{role}"));
        // Patching the annotations keeps the rest of the ServiceAccount.
        let original = base
            .service_accounts
            .iter()
            .find(|s| name(&s.metadata) == sa)
            .unwrap();
        assert_eq!(account.metadata.labels, original.metadata.labels, "`{sa}`");
        assert_eq!(
            account.automount_service_account_token, original.automount_service_account_token,
            "`{sa}`"
        );
    }
}

#[test]
fn kubectl_kustomize_renders_the_example_overlay_as_this_test_does() {
    // kubectl embeds kustomize; where it is installed, its rendering is the reference.
    let Ok(output) = Command::new("kubectl")
        .arg("kustomize")
        .arg(overlay_dir())
        .output()
    else {
        eprintln!(
            "kubectl is not installed: the overlay was checked against this test's own \
             rendering only (the_example_overlay_sets_the_images_and_role_arns_of_objects_the_base_has)"
        );
        return;
    };
    assert!(
        output.status.success(),
        "kubectl kustomize failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let by_kubectl = documents("kubectl kustomize", &text);
    let by_test = render_example_overlay();
    // kubectl orders objects by kind; compare them by identity, as typed values.
    let normalise = |documents: &[Value]| -> BTreeMap<(String, String, String), Value> {
        documents
            .iter()
            .map(|d| {
                // Each is a valid object of its kind.
                super::typed(d).map_or_else(|e| panic!("{e}"), |_| (identity(d), d.clone()))
            })
            .collect()
    };
    let kubectl = normalise(&by_kubectl);
    let ours = normalise(&by_test);
    assert_eq!(
        kubectl.keys().collect::<Vec<_>>(),
        ours.keys().collect::<Vec<_>>(),
        "the same objects"
    );
    for (id, object) in &ours {
        assert_eq!(
            &kubectl[id], object,
            "{id:?} renders differently with kubectl"
        );
    }
}
