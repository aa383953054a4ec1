//! Checks the YAML tree against the language's JSON Schema and converts it to JSON.
//!
//! The schema is generated from the Rust types, so this walk and the editor's schema can never
//! disagree. Unlike a serde pass it does not stop at the first problem: every unknown field,
//! wrong type and missing field is reported, and invalid parts are left out of the result.

use serde_json::{Map, Value};
use std::collections::HashMap;

use crate::diagnostic::{Diagnostic, Position, closest};
use crate::model::Duration;
use crate::yaml::{Node, NodeValue, Scalar};

/// Where each field path was written: used to place semantic errors.
#[derive(Debug, Default, Clone)]
pub struct Positions {
    values: HashMap<String, Position>,
}

impl Positions {
    /// The position of `path`, or of its closest written ancestor.
    pub fn at(&self, path: &str) -> Position {
        let mut path = path;
        loop {
            if let Some(position) = self.values.get(path) {
                return *position;
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => return self.values.get("").copied().unwrap_or_default(),
            }
        }
    }
}

pub struct Converter<'s> {
    root: &'s Value,
    pub diagnostics: Vec<Diagnostic>,
    pub positions: Positions,
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

impl<'s> Converter<'s> {
    /// A node the schema leaves free-form (a policy document or statement) as plain JSON, with
    /// the position of every value inside it recorded, so a diagnostic about `…Statement[0]`
    /// or `…policyStatements[1].Resource` points at that line.
    fn plain_json(&mut self, node: &Node, path: &str) -> Value {
        self.positions
            .values
            .entry(path.to_string())
            .or_insert(node.position);
        match &node.value {
            NodeValue::Mapping(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.text.clone(), self.plain_json(v, &join(path, &k.text))))
                    .collect(),
            ),
            NodeValue::Sequence(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.plain_json(v, &format!("{path}[{i}]")))
                    .collect(),
            ),
            NodeValue::Scalar(s) if s.is_null() => Value::Null,
            NodeValue::Scalar(s) => s
                .as_bool()
                .map(Value::Bool)
                .unwrap_or_else(|| Value::String(s.text.clone())),
        }
    }

    pub fn new(root_schema: &'s Value) -> Self {
        Self {
            root: root_schema,
            diagnostics: Vec::new(),
            positions: Positions::default(),
        }
    }

    pub fn convert_root(&mut self, node: &Node) -> Option<Value> {
        self.convert(node, self.root, "")
    }

    fn resolve(&self, schema: &'s Value) -> &'s Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference.trim_start_matches("#/$defs/");
                self.root
                    .get("$defs")
                    .and_then(|defs| defs.get(name))
                    .unwrap_or(schema)
            }
            None => schema,
        }
    }

    fn error(&mut self, position: Position, path: &str, message: String, hint: Option<String>) {
        let mut diagnostic = Diagnostic::error(position, path, message);
        diagnostic.hint = hint;
        self.diagnostics.push(diagnostic);
    }

    fn convert(&mut self, node: &Node, schema: &'s Value, path: &str) -> Option<Value> {
        self.positions
            .values
            .entry(path.to_string())
            .or_insert(node.position);
        let schema = self.resolve(schema);

        if let Some(allowed) = enum_values(self.root, schema) {
            return self.convert_enum(node, &allowed, path);
        }
        if let Some(branches) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Value::as_array)
        {
            return self.convert_union(node, branches, path);
        }

        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return Some(self.plain_json(node, path)),
        };
        if let NodeValue::Scalar(s) = &node.value
            && s.is_null()
        {
            if types.contains(&"null") {
                return Some(Value::Null);
            }
            self.error(
                node.position,
                path,
                format!("`{}` needs a value", last_segment(path)),
                types
                    .first()
                    .map(|t| format!("expected {}", describe(t, schema))),
            );
            return None;
        }
        let wanted = types
            .iter()
            .copied()
            .find(|t| *t != "null")
            .unwrap_or("null");
        match wanted {
            "object" => self.convert_object(node, schema, path),
            "array" => self.convert_array(node, schema, path),
            scalar_type => self.convert_scalar(node, scalar_type, schema, path),
        }
    }

    fn convert_enum(&mut self, node: &Node, allowed: &[String], path: &str) -> Option<Value> {
        let text = match &node.value {
            NodeValue::Scalar(s) => s.text.clone(),
            _ => {
                self.error(
                    node.position,
                    path,
                    format!(
                        "`{}` must be one of {}, not {}",
                        last_segment(path),
                        list(allowed),
                        node.kind_name()
                    ),
                    None,
                );
                return None;
            }
        };
        if allowed.contains(&text) {
            return Some(Value::String(text));
        }
        let hint = match closest(&text, allowed.iter().map(String::as_str)) {
            Some(near) => format!("did you mean `{near}`? Valid values: {}", list(allowed)),
            None => format!("valid values: {}", list(allowed)),
        };
        self.error(
            node.position,
            path,
            format!("unknown value `{text}` for `{}`", last_segment(path)),
            Some(hint),
        );
        None
    }

    fn convert_union(&mut self, node: &Node, branches: &'s [Value], path: &str) -> Option<Value> {
        let is_null_schema = |b: &Value| b.get("type").and_then(Value::as_str) == Some("null");
        if let NodeValue::Scalar(s) = &node.value
            && s.is_null()
            && branches.iter().any(is_null_schema)
        {
            return Some(Value::Null);
        }
        let candidates: Vec<&'s Value> = branches.iter().filter(|b| !is_null_schema(b)).collect();
        let mut best: Option<(Vec<Diagnostic>, Option<Value>)> = None;
        for candidate in candidates {
            let mut trial = Converter::new(self.root);
            let value = trial.convert(node, candidate, path);
            if trial.diagnostics.is_empty() {
                self.positions.values.extend(trial.positions.values);
                return value;
            }
            if best
                .as_ref()
                .is_none_or(|(diags, _)| trial.diagnostics.len() < diags.len())
            {
                best = Some((trial.diagnostics, value));
            }
        }
        let (diagnostics, value) = best?;
        self.diagnostics.extend(diagnostics);
        value
    }

    fn convert_object(&mut self, node: &Node, schema: &'s Value, path: &str) -> Option<Value> {
        let NodeValue::Mapping(entries) = &node.value else {
            self.error(
                node.position,
                path,
                format!(
                    "`{}` must be a mapping, not {}",
                    display_name(path),
                    node.kind_name()
                ),
                None,
            );
            return None;
        };
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        let mut out = Map::new();
        for (key, value) in entries {
            let field_path = join(path, &key.text);
            self.positions
                .values
                .entry(field_path.clone())
                .or_insert(value.position);
            match properties.and_then(|p| p.get(&key.text)) {
                Some(field_schema) => {
                    if let Some(v) = self.convert(value, field_schema, &field_path) {
                        out.insert(key.text.clone(), v);
                    }
                }
                None => match additional {
                    Some(Value::Bool(false)) | None if properties.is_some() => {
                        let names: Vec<&str> = properties
                            .map(|p| p.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        let hint = match closest(&key.text, names.iter().copied()) {
                            Some(near) => format!("did you mean `{near}`?"),
                            None => format!("valid fields here: {}", names.join(", ")),
                        };
                        self.error(
                            key.position,
                            &field_path,
                            format!("unknown field `{}`", key.text),
                            Some(hint),
                        );
                    }
                    Some(additional_schema) if additional_schema.is_object() => {
                        if let Some(v) = self.convert(value, additional_schema, &field_path) {
                            out.insert(key.text.clone(), v);
                        }
                    }
                    _ => {
                        out.insert(key.text.clone(), self.plain_json(value, &field_path));
                    }
                },
            }
        }
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for field in required.iter().filter_map(Value::as_str) {
                if !entries.iter().any(|(k, _)| k.text == field) {
                    self.error(
                        node.position,
                        &join(path, field),
                        format!("missing required field `{field}`"),
                        properties
                            .and_then(|p| p.get(field))
                            .and_then(|s| self.resolve(s).get("description"))
                            .and_then(Value::as_str)
                            .map(|d| format!("add `{field}`: {d}"))
                            .or_else(|| Some(format!("add `{field}`"))),
                    );
                }
            }
        }
        Some(Value::Object(out))
    }

    fn convert_array(&mut self, node: &Node, schema: &'s Value, path: &str) -> Option<Value> {
        let NodeValue::Sequence(items) = &node.value else {
            self.error(
                node.position,
                path,
                format!(
                    "`{}` must be a list, not {}",
                    display_name(path),
                    node.kind_name()
                ),
                Some("write one `- item` per line, or `[a, b]`".into()),
            );
            return None;
        };
        let item_schema = schema.get("items").unwrap_or(&Value::Bool(true));
        let converted = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.convert(item, item_schema, &format!("{path}[{i}]")))
            .collect();
        Some(Value::Array(converted))
    }

    fn convert_scalar(
        &mut self,
        node: &Node,
        wanted: &str,
        schema: &Value,
        path: &str,
    ) -> Option<Value> {
        let NodeValue::Scalar(scalar) = &node.value else {
            self.error(
                node.position,
                path,
                format!(
                    "`{}` must be {}, not {}",
                    display_name(path),
                    describe(wanted, schema),
                    node.kind_name()
                ),
                None,
            );
            return None;
        };
        let result = match wanted {
            "string" => convert_string(scalar, schema),
            "integer" => convert_integer(scalar, schema),
            "number" => convert_decimal(scalar),
            "boolean" => convert_bool(scalar),
            _ => Ok(Value::String(scalar.text.clone())),
        };
        match result {
            Ok(value) => Some(value),
            Err((message, hint)) => {
                self.error(
                    node.position,
                    path,
                    format!("`{}` {message}", display_name(path)),
                    hint,
                );
                None
            }
        }
    }
}

type ScalarResult = Result<Value, (String, Option<String>)>;

fn convert_string(scalar: &Scalar, schema: &Value) -> ScalarResult {
    if schema.get("format").and_then(Value::as_str) == Some("duration") {
        return match scalar.text.parse::<Duration>() {
            Ok(_) => Ok(Value::String(scalar.text.clone())),
            Err(_) => Err((
                format!("is not a duration: `{}`", scalar.text),
                Some(match scalar.text.parse::<u64>() {
                    Ok(n) => format!("add a unit, e.g. `{n}s`"),
                    Err(_) => {
                        "write a whole number and a unit: ms, s, m, h or d (e.g. 60s, 5m, 14d)"
                            .into()
                    }
                }),
            )),
        };
    }
    if scalar.as_bool().is_some() && scalar.plain {
        return Err((
            format!("must be a string, not the boolean `{}`", scalar.text),
            Some(format!("quote it: \"{}\"", scalar.text)),
        ));
    }
    Ok(Value::String(scalar.text.clone()))
}

fn convert_integer(scalar: &Scalar, schema: &Value) -> ScalarResult {
    let max = match schema.get("format").and_then(Value::as_str) {
        Some("uint32") => u64::from(u32::MAX),
        _ => u64::MAX,
    };
    match scalar.text.parse::<u64>() {
        Ok(n) if scalar.plain && n <= max => Ok(Value::from(n)),
        Ok(_) if scalar.plain => Err((format!("is too large (at most {max})"), None)),
        _ => {
            let hint = if scalar.text.parse::<Duration>().is_ok() {
                Some("this field is a plain number, without a unit".to_string())
            } else if scalar.text.starts_with('-') {
                Some("it cannot be negative".to_string())
            } else {
                None
            };
            Err((
                format!("must be a whole number, not `{}`", scalar.text),
                hint,
            ))
        }
    }
}

fn convert_decimal(scalar: &Scalar) -> ScalarResult {
    match rust_decimal::Decimal::from_str_exact(&scalar.text) {
        Ok(_) if scalar.plain => Ok(Value::String(scalar.text.clone())),
        _ => Err((
            format!("must be a number, not `{}`", scalar.text),
            Some("write it without quotes or units, e.g. 1000 or 0.5".into()),
        )),
    }
}

fn convert_bool(scalar: &Scalar) -> ScalarResult {
    match scalar.as_bool() {
        Some(b) => Ok(Value::Bool(b)),
        None => Err((
            format!("must be true or false, not `{}`", scalar.text),
            scalar
                .looks_like_yaml11_bool()
                .then(|| "YAML 1.2 reads yes/no/on/off as strings: write true or false".into()),
        )),
    }
}

/// The allowed values, when a schema is an enumeration of strings.
fn enum_values(root: &Value, schema: &Value) -> Option<Vec<String>> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return Some(
            values
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
        );
    }
    if let Some(value) = schema.get("const").and_then(Value::as_str) {
        return Some(vec![value.to_string()]);
    }
    let branches = schema.get("oneOf").and_then(Value::as_array)?;
    let mut all = Vec::new();
    for branch in branches {
        let branch = match branch.get("$ref").and_then(Value::as_str) {
            Some(r) => root.get("$defs")?.get(r.trim_start_matches("#/$defs/"))?,
            None => branch,
        };
        all.extend(enum_values(root, branch)?);
    }
    Some(all)
}

fn describe(wanted: &str, schema: &Value) -> &'static str {
    match (wanted, schema.get("format").and_then(Value::as_str)) {
        ("string", Some("duration")) => "a duration such as 60s",
        ("string", _) => "a string",
        ("integer", _) => "a whole number",
        ("number", _) => "a number",
        ("boolean", _) => "true or false",
        ("array", _) => "a list",
        ("object", _) => "a mapping",
        _ => "a value",
    }
}

fn last_segment(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

fn display_name(path: &str) -> &str {
    if path.is_empty() {
        "the document"
    } else {
        last_segment(path)
    }
}

fn list(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
