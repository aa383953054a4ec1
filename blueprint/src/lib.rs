//! The Ballast blueprint language v1.
//!
//! A blueprint is read in three passes so that `ballast validate` reports every problem at once:
//! YAML into a positioned tree ([`yaml`]), the tree against the JSON Schema generated from
//! [`model`] (unknown fields, types, enums), then the typed blueprint against AWS's rules and its
//! own references ([`validate`]). Nothing here touches the network.

mod convert;
pub mod diagnostic;
pub mod graph;
pub mod model;
mod naming;
mod validate;
mod yaml;

use std::path::Path;
use std::sync::OnceLock;

pub use diagnostic::{Diagnostic, Diagnostics, Position, Severity};
pub use graph::{ResourceId, ResourceKind, dependency_order};
pub use model::*;
pub use naming::{
    OWNERSHIP_BLUEPRINT_TAG, OWNERSHIP_MANAGED_TAG, SafetyOverride, safety_overrides,
};

/// A blueprint that passed validation, with its warnings.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub file: String,
    pub blueprint: Blueprint,
    pub warnings: Vec<Diagnostic>,
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

/// Reads and validates a blueprint file.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let file = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        file: file.clone(),
        source,
    })?;
    parse(&file, &source).map_err(LoadError::Invalid)
}

/// Validates blueprint text; `file` only labels the diagnostics.
pub fn parse(file: &str, source: &str) -> Result<Loaded, Diagnostics> {
    let fail = |items: Vec<Diagnostic>| Diagnostics {
        file: file.to_string(),
        items,
    };
    let (tree, mut diagnostics) = yaml::parse_document(source).map_err(|d| fail(vec![d]))?;
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
        items: diagnostics,
    };
    match typed {
        Some(blueprint) if !result.has_errors() => Ok(Loaded {
            file: file.to_string(),
            blueprint,
            warnings: result.items,
        }),
        _ => Err(result),
    }
}
