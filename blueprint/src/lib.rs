//! The Ballast blueprint language v1.
//!
//! A blueprint is read in three passes so that `ballast validate` reports every problem at once:
//! YAML into a positioned tree ([`yaml`]), the tree against the JSON Schema generated from
//! [`model`] (unknown fields, types, enums), then the typed blueprint against AWS's rules and its
//! own references ([`validate`]). Nothing here touches the network.

mod convert;
pub mod diagnostic;
pub mod graph;
pub mod key_policy;
pub mod model;
mod naming;
pub mod policy;
pub mod queue_policy;
pub mod registry;
pub mod target;
mod validate;
pub mod values;
pub mod yaml;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use convert::Positions;
pub use diagnostic::{Diagnostic, Diagnostics, Position, Severity};
pub use graph::{ResourceId, ResourceKind, dependency_order};
pub use model::*;
pub use naming::{
    OWNERSHIP_BLUEPRINT_TAG, OWNERSHIP_MANAGED_TAG, OWNERSHIP_RESOURCE_TAG, SafetyOverride,
    declared, observed, safety_overrides, tagged_resource_id,
};
pub use registry::Resource;
pub use yaml::{MAX_DEPTH, MAX_NODES, MAX_SCALAR_BYTES, MAX_SOURCE_BYTES};

/// A blueprint that passed validation, with its warnings.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub file: String,
    /// The values files laid over it, in order (see [`values`]).
    pub values: Vec<String>,
    pub blueprint: Blueprint,
    pub warnings: Vec<Diagnostic>,
    /// Where each field was written, so later reports (drift) can point into the file.
    positions: convert::Positions,
}

impl Loaded {
    /// The file `position` is in: the blueprint's, or one of its values files.
    pub fn file_of(&self, position: Position) -> &str {
        usize::from(position.source)
            .checked_sub(1)
            .and_then(|i| self.values.get(i))
            .unwrap_or(&self.file)
    }

    /// Where `resource` is declared, or its `field` (a camelCase field name such as
    /// `visibilityTimeout`; the resource's own position when the field is not written out).
    /// `None` for a resource the blueprint does not declare (one being deleted or retained).
    pub fn declared_at(&self, resource: &ResourceId, field: Option<&str>) -> Option<Position> {
        let (_, path) = graph::resources(&self.blueprint)
            .into_iter()
            .find(|(id, _)| id == resource)?;
        Some(match field {
            Some(field) => self.positions.at(&format!("{path}.{field}")),
            None => self.positions.at(&path),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
}

impl LoadError {
    /// What to do about it, for the errors that are not already positioned diagnostics.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            LoadError::Io { source, .. } => Some(match source.kind() {
                std::io::ErrorKind::NotFound => {
                    "check the path (relative paths start at the current directory)"
                }
                std::io::ErrorKind::PermissionDenied => "check the file's permissions",
                std::io::ErrorKind::IsADirectory => "name a blueprint file, not a directory",
                _ => "check that the path names a readable blueprint file",
            }),
            LoadError::Invalid(_) => None,
        }
    }
}

/// The language's JSON Schema (draft 2020-12), as served to editors.
pub fn json_schema() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut schema = schemars::schema_for!(Blueprint).to_value();
        if let Some(object) = schema.as_object_mut() {
            object.insert(
                "$id".into(),
                "https://ballast.dev/schemas/blueprint-v1.json".into(),
            );
        }
        schema
    })
}

/// Reads and validates a blueprint file. Every command loads blueprints through here (or
/// [`read`] + [`parse`]), so the size, UTF-8 and expansion limits apply everywhere.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    load_with_values(path, &[])
}

/// [`load`] with values files laid over the blueprint, in order (see [`values`]); each is read
/// within the same limits as a blueprint.
pub fn load_with_values(path: &Path, values: &[PathBuf]) -> Result<Loaded, LoadError> {
    let file = path.display().to_string();
    let source = read(path)?;
    let values = read_values(values)?;
    parse_with_values(&file, &source, &values).map_err(LoadError::Invalid)
}

/// Reads values files with [`read`], each labelled by its path, for [`parse_with_values`].
pub fn read_values(values: &[PathBuf]) -> Result<Vec<(String, String)>, LoadError> {
    values
        .iter()
        .map(|p| Ok((p.display().to_string(), read(p)?)))
        .collect()
}

/// Most values files laid over one blueprint.
pub const MAX_VALUES_FILES: usize = 16;

/// Reads a blueprint's text: at most [`MAX_SOURCE_BYTES`] are read (a larger file, or an endless
/// one such as `/dev/zero`, is refused without reading it whole), and the bytes must be UTF-8
/// (the error names the byte offset of the first bad byte).
pub fn read(path: &Path) -> Result<String, LoadError> {
    let file = path.display().to_string();
    let io = |source| LoadError::Io {
        file: file.clone(),
        source,
    };
    let invalid = |d: Diagnostic| {
        LoadError::Invalid(Diagnostics {
            file: file.clone(),
            items: vec![d],
        })
    };
    let limit = u64::try_from(MAX_SOURCE_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit).read_to_end(&mut bytes))
        .map_err(io)?;
    if bytes.len() > MAX_SOURCE_BYTES {
        return Err(invalid(yaml::too_large(bytes.len())));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) => Err(invalid(yaml::not_utf8(e.as_bytes(), &e.utf8_error()))),
    }
}

/// Validates blueprint text; `file` only labels the diagnostics.
pub fn parse(file: &str, source: &str) -> Result<Loaded, Diagnostics> {
    parse_with_values(file, source, &[])
}

/// Validates blueprint text with values texts (`(file, text)`, in order) laid over it. A
/// problem is reported in the file that wrote the value it is about.
pub fn parse_with_values(
    file: &str,
    source: &str,
    values: &[(String, String)],
) -> Result<Loaded, Diagnostics> {
    let name_files = |mut items: Vec<Diagnostic>| {
        for d in &mut items {
            d.file = usize::from(d.position.source)
                .checked_sub(1)
                .and_then(|i| values.get(i))
                .map(|(name, _)| name.as_str().into());
        }
        items
    };
    let fail = |items: Vec<Diagnostic>| Diagnostics {
        file: file.to_string(),
        items: name_files(items),
    };
    if values.len() > MAX_VALUES_FILES {
        return Err(fail(vec![
            Diagnostic::error(
                Position::new(1, 1),
                "",
                format!(
                    "{} values files; at most {MAX_VALUES_FILES} are laid over one blueprint",
                    values.len()
                ),
            )
            .with_hint("merge some of them: one per environment is the usual layout"),
        ]));
    }
    let (mut tree, mut diagnostics) = yaml::parse_document(source).map_err(|d| fail(vec![d]))?;
    for (index, (_, text)) in (1..=u8::MAX).zip(values) {
        let in_values = |mut d: Diagnostic| {
            d.position.source = index;
            d
        };
        let (mut overlay, problems) =
            yaml::parse_document(text).map_err(|d| fail(vec![in_values(d)]))?;
        values::relocate(&mut overlay, index);
        diagnostics.extend(problems.into_iter().map(in_values));
        if matches!(overlay.value, yaml::NodeValue::Mapping(_)) {
            values::merge(&mut tree, overlay);
        } else {
            diagnostics.push(
                Diagnostic::error(
                    values::file_start(index),
                    "",
                    "a values file is a mapping laid over the blueprint",
                )
                .with_hint("write the fields that differ, e.g. `spec: {autoScalingGroups: [{name: workers, maxSize: 20}]}`"),
            );
        }
    }
    let mut converter = convert::Converter::new(json_schema());
    let value = converter.convert_root(&tree);
    diagnostics.append(&mut converter.diagnostics);
    let typed = value.and_then(|v| serde_json::from_value::<Blueprint>(v).ok());
    if let Some(blueprint) = &typed {
        diagnostics.extend(validate::check(blueprint, &converter.positions));
    } else if diagnostics.is_empty() {
        diagnostics.push(Diagnostic::error(
            tree.position,
            "",
            "the document is not a blueprint",
        ));
    }
    diagnostics.sort_by_key(|d| d.position);
    let result = Diagnostics {
        file: file.to_string(),
        items: name_files(diagnostics),
    };
    match typed {
        Some(blueprint) if !result.has_errors() => Ok(Loaded {
            file: file.to_string(),
            values: values.iter().map(|(name, _)| name.clone()).collect(),
            blueprint,
            warnings: result.items,
            positions: converter.positions,
        }),
        _ => Err(result),
    }
}

/// Reads a YAML document of another Ballast format (the worker's risk rules) through the same
/// bounded, positioned tree and the same schema walk as a blueprint: every unknown field, wrong
/// type and missing field is reported at its `file:line:column` with a hint, and the answer
/// keeps the [`Positions`] so that the caller's own semantic checks can point into the file too.
/// `schema` is the format's JSON Schema (`schemars::schema_for!(T).to_value()`).
pub fn parse_format<T: serde::de::DeserializeOwned>(
    file: &str,
    source: &str,
    schema: &serde_json::Value,
    what: &str,
) -> Result<(T, Positions), Diagnostics> {
    let fail = |items: Vec<Diagnostic>| Diagnostics {
        file: file.to_string(),
        items,
    };
    let (tree, mut diagnostics) = yaml::parse_document(source).map_err(|d| fail(vec![d]))?;
    let mut converter = convert::Converter::new(schema);
    let value = converter.convert_root(&tree);
    diagnostics.append(&mut converter.diagnostics);
    let typed = match value.map(serde_json::from_value::<T>) {
        Some(Ok(typed)) => Some(typed),
        Some(Err(error)) if diagnostics.is_empty() => {
            diagnostics.push(Diagnostic::error(
                tree.position,
                "",
                format!("the document is not {what}: {error}"),
            ));
            None
        }
        _ => None,
    };
    if typed.is_none() && diagnostics.is_empty() {
        diagnostics.push(Diagnostic::error(
            tree.position,
            "",
            format!("the document is not {what}"),
        ));
    }
    diagnostics.sort_by_key(|d| d.position);
    match typed {
        Some(typed) if !diagnostics.iter().any(Diagnostic::is_error) => {
            Ok((typed, converter.positions))
        }
        _ => Err(fail(diagnostics)),
    }
}
