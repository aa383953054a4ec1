//! Saved plans: `ballast plan FILE --out PLANFILE`, then `ballast apply PLANFILE` applies exactly
//! what was reviewed, or refuses.
//!
//! A saved plan is not a program: `apply` never takes actions from it. It re-reads the blueprint,
//! observes AWS again and plans again, and goes ahead only if the blueprint's bytes hash to what
//! was saved and the new plan equals the saved one: the same resources, actions, and live and
//! desired values of every changed field (the part of the observed state the plan depends on).
//! So a stale plan (someone edited the blueprint, or AWS changed) is refused, and an edited plan
//! file can at most make apply refuse, never make it do something unreviewed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::provision::Plan;
use crate::provision::state::KNOWN_AFTER_APPLY;

/// The value of `savedPlan` in files this version writes.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SavedPlan {
    /// Marks the file as a saved plan (and its format).
    pub saved_plan: u32,
    /// The blueprint the plan was made from, as an absolute path.
    pub blueprint_file: PathBuf,
    /// SHA-256 of the blueprint's text, hex.
    pub blueprint_sha256: String,
    /// The values files laid over the blueprint (`--values`), in order, each with the SHA-256
    /// of its text; absent for a plan made without.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values_files: Vec<SavedFile>,
    /// The `--target`s the plan was made with (`kind/name`), absent for a whole plan. Apply
    /// selects the same resources and plans them again; the plan itself records them too
    /// (`plan.targets`), so a file whose two lists disagree is refused as a changed plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// The plan as `ballast plan --output json` prints it.
    pub plan: serde_json::Value,
}

/// A file a saved plan was made from, and the hash of its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SavedFile {
    /// As an absolute path.
    pub file: PathBuf,
    /// SHA-256 of its text, hex.
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error(
        "{file} is saved-plan format {found}; this ballast reads format {FORMAT}: make the plan again with this version"
    )]
    Format { file: String, found: u32 },
    #[error("the blueprint {file} changed since the plan was saved; {REVIEW_AGAIN}")]
    BlueprintChanged { file: String },
    #[error("the values file {file} changed since the plan was saved; {REVIEW_AGAIN}")]
    ValuesChanged { file: String },
    #[error("AWS or the blueprint's meaning changed since the plan was saved: {}; {REVIEW_AGAIN}", .differences.join("; "))]
    PlanChanged { differences: Vec<String> },
    #[error("the plan cannot be encoded")]
    Encode(#[from] serde_json::Error),
}

const REVIEW_AGAIN: &str =
    "nothing was changed: review again with `ballast plan FILE --out PLANFILE` and apply that plan";

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl SavedPlan {
    /// `values` are the values files (absolute path and text) laid over the blueprint.
    pub fn new(
        blueprint_file: &Path,
        blueprint_text: &str,
        values: &[(PathBuf, String)],
        plan: &Plan,
    ) -> Result<Self, SavedPlanError> {
        Ok(SavedPlan {
            saved_plan: FORMAT,
            blueprint_file: blueprint_file.to_path_buf(),
            blueprint_sha256: sha256_hex(blueprint_text),
            values_files: values
                .iter()
                .map(|(file, text)| SavedFile {
                    file: file.clone(),
                    sha256: sha256_hex(text),
                })
                .collect(),
            targets: plan.targets.iter().map(ToString::to_string).collect(),
            plan: serde_json::to_value(plan)?,
        })
    }

    /// Reads `text` as a saved plan; `None` when it is not one (a blueprint, say).
    pub fn recognise(file: &str, text: &str) -> Option<Result<Self, SavedPlanError>> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        let found = value.get("savedPlan")?.as_u64()?;
        if found != u64::from(FORMAT) {
            return Some(Err(SavedPlanError::Format {
                file: file.to_string(),
                found: u32::try_from(found).unwrap_or(u32::MAX),
            }));
        }
        Some(serde_json::from_value(value).map_err(SavedPlanError::from))
    }

    /// The values files to read again, in order.
    pub fn values_paths(&self) -> Vec<PathBuf> {
        self.values_files.iter().map(|v| v.file.clone()).collect()
    }

    /// Refuses unless `values` (as read from [`SavedPlan::values_paths`]) are the texts the
    /// plan was made from.
    pub fn check_values(&self, values: &[(PathBuf, String)]) -> Result<(), SavedPlanError> {
        for (saved, (file, text)) in self.values_files.iter().zip(values) {
            if sha256_hex(text) != saved.sha256 {
                return Err(SavedPlanError::ValuesChanged {
                    file: file.display().to_string(),
                });
            }
        }
        Ok(())
    }

    /// Refuses unless `blueprint_text` is the text the plan was made from.
    pub fn check_blueprint(&self, blueprint_text: &str) -> Result<(), SavedPlanError> {
        if sha256_hex(blueprint_text) == self.blueprint_sha256 {
            Ok(())
        } else {
            Err(SavedPlanError::BlueprintChanged {
                file: self.blueprint_file.display().to_string(),
            })
        }
    }

    /// Refuses unless `now` (planned just before applying) is the saved plan; the error names
    /// each resource whose planned change differs.
    pub fn check_plan(&self, now: &Plan) -> Result<(), SavedPlanError> {
        let mut now = serde_json::to_value(now)?;
        settle_known_after_apply(&self.plan, &mut now);
        if now == self.plan {
            return Ok(());
        }
        let changes = |plan: &serde_json::Value| -> Vec<(String, serde_json::Value)> {
            plan.get("changes")
                .and_then(serde_json::Value::as_array)
                .map(|changes| {
                    changes
                        .iter()
                        .map(|c| (resource_of(c), c.clone()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let saved = changes(&self.plan);
        let current = changes(&now);
        let mut differences = Vec::new();
        for (resource, change) in &current {
            match saved.iter().find(|(r, _)| r == resource) {
                None => differences.push(format!("{resource} is new in the plan")),
                Some((_, before)) if before != change => differences.push(format!(
                    "{resource}: planned {}, now {}",
                    action_of(before),
                    action_of(change)
                )),
                Some(_) => {}
            }
        }
        for (resource, _) in &saved {
            if !current.iter().any(|(r, _)| r == resource) {
                differences.push(format!("{resource} is no longer in the plan"));
            }
        }
        if differences.is_empty() && now.get("targets") != self.plan.get("targets") {
            differences.push(format!(
                "the plan file's targets ({}) are not the targets its plan was made with",
                self.targets.join(", ")
            ));
        }
        if differences.is_empty() && now.get("orphans") != self.plan.get("orphans") {
            differences
                .push("the orphans (owned resources no declaration claims) differ".to_string());
        }
        if differences.is_empty() {
            differences.push("the plan's summary or safety overrides differ".to_string());
        }
        Err(SavedPlanError::PlanChanged { differences })
    }
}

/// A resource to create was reviewed with an attribute "known after apply" (it depends on a
/// resource not created at planning time, such as an ARN): whatever it is now is what was
/// reviewed, as in Terraform. Every other attribute must be equal.
fn settle_known_after_apply(saved: &serde_json::Value, now: &mut serde_json::Value) {
    let Some(saved_changes) = saved.get("changes").and_then(serde_json::Value::as_array) else {
        return;
    };
    let Some(changes) = now
        .get_mut("changes")
        .and_then(serde_json::Value::as_array_mut)
    else {
        return;
    };
    for change in changes {
        let resource = resource_of(change);
        let Some(before) = saved_changes.iter().find(|c| resource_of(c) == resource) else {
            continue;
        };
        let (Some(reviewed), Some(attributes)) = (
            before
                .get("attributes")
                .and_then(serde_json::Value::as_array),
            change
                .get_mut("attributes")
                .and_then(serde_json::Value::as_array_mut),
        ) else {
            continue;
        };
        for attribute in attributes {
            let field = attribute.get("field").cloned();
            let unknown_when_reviewed = reviewed.iter().any(|r| {
                r.get("field") == field.as_ref()
                    && r.get("value").and_then(serde_json::Value::as_str) == Some(KNOWN_AFTER_APPLY)
            });
            if unknown_when_reviewed {
                attribute["value"] = serde_json::Value::from(KNOWN_AFTER_APPLY);
            }
        }
    }
}

/// `kind/name`, as plans print resources.
fn resource_of(change: &serde_json::Value) -> String {
    let resource = &change["resource"];
    match (resource["kind"].as_str(), resource["name"].as_str()) {
        (Some(kind), Some(name)) => format!("{kind}/{name}"),
        _ => resource.to_string(),
    }
}

/// The action with its changed fields and values, as the JSON plan writes it.
fn action_of(change: &serde_json::Value) -> String {
    let mut change = change.clone();
    if let Some(map) = change.as_object_mut() {
        map.remove("resource");
        map.remove("physical_name");
    }
    change.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::diff::{Action, FieldChange, PlannedChange, Summary};
    use crate::provision::state::FieldClass;
    use ballast_blueprint::{ResourceId, ResourceKind};

    fn plan(live: &str) -> Plan {
        Plan {
            format_version: 1,
            blueprint: "fx".into(),
            changes: vec![PlannedChange {
                resource: ResourceId {
                    kind: ResourceKind::Queue,
                    name: "work".into(),
                },
                physical_name: "fx-work".into(),
                action: Action::Update {
                    changes: vec![FieldChange {
                        field: "visibilityTimeout".into(),
                        live: live.into(),
                        desired: "60".into(),
                        class: FieldClass::Enforced,
                    }],
                },
                attributes: Vec::new(),
            }],
            safety_overrides: Vec::new(),
            summary: Summary {
                update: 1,
                ..Summary::default()
            },
            orphans: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// A plan made with values files records each one's hash: any edited since is refused,
    /// and a plan made without records none (its file reads as before).
    #[test]
    fn a_values_file_edited_since_the_plan_is_refused() {
        let values = vec![(PathBuf::from("/prod.yaml"), "spec: {}\n".to_string())];
        let saved = SavedPlan::new(Path::new("/bp.yaml"), "text", &values, &plan("30")).unwrap();
        assert_eq!(saved.values_paths(), [PathBuf::from("/prod.yaml")]);
        saved.check_values(&values).unwrap();
        let edited = vec![(PathBuf::from("/prod.yaml"), "spec: {x: 1}\n".to_string())];
        let err = saved.check_values(&edited).unwrap_err().to_string();
        assert!(
            err.starts_with("the values file /prod.yaml changed since the plan was saved"),
            "{err}"
        );
        let plain = SavedPlan::new(Path::new("/bp.yaml"), "text", &[], &plan("30")).unwrap();
        let json = serde_json::to_value(&plain).unwrap();
        assert!(json.get("valuesFiles").is_none(), "{json}");
    }

    #[test]
    fn a_saved_plan_round_trips_and_is_recognised_only_as_such() {
        let saved = SavedPlan::new(Path::new("/bp.yaml"), "text", &[], &plan("30")).unwrap();
        let text = serde_json::to_string_pretty(&saved).unwrap();
        assert_eq!(
            SavedPlan::recognise("p.json", &text).unwrap().unwrap(),
            saved
        );
        assert!(SavedPlan::recognise("bp.yaml", "apiVersion: ballast.dev/v1\n").is_none());
        assert!(SavedPlan::recognise("bp.json", r#"{"apiVersion": "ballast.dev/v1"}"#).is_none());
        let future = text.replace("\"savedPlan\": 1", "\"savedPlan\": 2");
        assert!(matches!(
            SavedPlan::recognise("p.json", &future),
            Some(Err(SavedPlanError::Format { found: 2, .. }))
        ));
    }

    #[test]
    fn a_targeted_plan_records_its_targets_and_is_compared_with_them() {
        let work = ResourceId::new(ResourceKind::Queue, "work");
        let mut targeted = plan("30");
        targeted.targets = vec![work.clone()];
        let saved = SavedPlan::new(Path::new("/bp.yaml"), "text", &[], &targeted).unwrap();
        assert_eq!(saved.targets, ["queue/work"]);
        let text = serde_json::to_string(&saved).unwrap();
        assert_eq!(
            SavedPlan::recognise("p.json", &text).unwrap().unwrap(),
            saved
        );
        saved.check_plan(&targeted).unwrap();
        // The same changes planned without the targets (or with others) are another plan.
        let err = saved.check_plan(&plan("30")).unwrap_err().to_string();
        assert!(
            err.contains("the plan file's targets (queue/work) are not the targets"),
            "{err}"
        );
        // A whole plan writes no `targets` at all, as before targeting existed.
        let whole = serde_json::to_value(
            SavedPlan::new(Path::new("/bp.yaml"), "text", &[], &plan("30")).unwrap(),
        )
        .unwrap();
        assert!(whole.get("targets").is_none(), "{whole}");
        assert!(whole["plan"].get("targets").is_none(), "{whole}");
    }

    #[test]
    fn a_changed_blueprint_or_a_changed_live_value_is_refused() {
        let saved = SavedPlan::new(Path::new("/bp.yaml"), "text", &[], &plan("30")).unwrap();
        saved.check_blueprint("text").unwrap();
        assert!(matches!(
            saved.check_blueprint("text "),
            Err(SavedPlanError::BlueprintChanged { .. })
        ));
        saved.check_plan(&plan("30")).unwrap();
        let err = saved.check_plan(&plan("45")).unwrap_err();
        assert!(
            err.to_string().contains("queue/work: planned")
                && err.to_string().contains("\"live\":\"45\""),
            "{err}"
        );
        let mut gone = plan("30");
        gone.changes.clear();
        let err = saved.check_plan(&gone).unwrap_err();
        assert!(
            err.to_string()
                .contains("queue/work is no longer in the plan"),
            "{err}"
        );
    }

    /// A create reviewed with an attribute known after apply still applies once the value is
    /// known; any other attribute that differs is refused.
    #[test]
    fn a_value_known_after_apply_when_reviewed_may_be_known_now() {
        use crate::provision::diff::Attribute;
        let create = |policy: &str, retention: &str| {
            let mut plan = plan("30");
            plan.changes[0].action = Action::Create;
            plan.changes[0].attributes = vec![
                Attribute {
                    field: "policy".into(),
                    value: policy.into(),
                    class: FieldClass::Enforced,
                },
                Attribute {
                    field: "retention".into(),
                    value: retention.into(),
                    class: FieldClass::Enforced,
                },
            ];
            plan
        };
        let saved = SavedPlan::new(
            Path::new("/bp.yaml"),
            "text",
            &[],
            &create(KNOWN_AFTER_APPLY, "345600"),
        )
        .unwrap();
        saved
            .check_plan(&create("{\"Statement\":[]}", "345600"))
            .unwrap();
        let refused = saved
            .check_plan(&create("{\"Statement\":[]}", "86400"))
            .unwrap_err();
        assert!(refused.to_string().contains("queue/work"), "{refused}");
    }
}
