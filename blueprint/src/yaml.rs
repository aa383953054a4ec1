//! A YAML document as a tree whose every node remembers where it was written.
//!
//! Validation needs the position of every key and value to report all problems at once, so the
//! blueprint is first read into this tree (with serde-saphyr's parser) and only then converted.

use serde_saphyr::granit_parser::{Event, Marker, Parser, ScalarStyle};
use std::collections::HashMap;

use crate::diagnostic::{Diagnostic, Position};

#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Mapping(Vec<(Key, Node)>),
    Sequence(Vec<Node>),
    Scalar(Scalar),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: NodeValue,
    pub position: Position,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub text: String,
    pub position: Position,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub text: String,
    /// Plain scalars get YAML 1.2 core-schema typing; quoted and block scalars are strings.
    pub plain: bool,
}

impl Scalar {
    pub fn is_null(&self) -> bool {
        self.plain && matches!(self.text.as_str(), "" | "~" | "null" | "Null" | "NULL")
    }

    pub fn as_bool(&self) -> Option<bool> {
        if !self.plain {
            return None;
        }
        match self.text.as_str() {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            _ => None,
        }
    }

    /// YAML 1.1 booleans that YAML 1.2 reads as strings; worth a hint when a boolean is expected.
    pub fn looks_like_yaml11_bool(&self) -> bool {
        self.plain
            && matches!(
                self.text.to_ascii_lowercase().as_str(),
                "yes" | "no" | "on" | "off" | "y" | "n"
            )
    }
}

impl Node {
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            NodeValue::Mapping(_) => "a mapping",
            NodeValue::Sequence(_) => "a list",
            NodeValue::Scalar(s) if s.is_null() => "null",
            NodeValue::Scalar(s) if s.as_bool().is_some() => "a boolean",
            NodeValue::Scalar(s) if s.plain && s.text.parse::<f64>().is_ok() => "a number",
            NodeValue::Scalar(_) => "a string",
        }
    }
}

fn position(marker: &Marker) -> Position {
    Position {
        line: marker.line(),
        column: marker.col() + 1,
    }
}

/// Reads exactly one YAML document. Duplicate keys are reported (all of them) but do not stop
/// reading; a syntax error does, since nothing after it can be trusted.
pub fn parse_document(source: &str) -> Result<(Node, Vec<Diagnostic>), Diagnostic> {
    let mut builder = TreeBuilder::default();
    let parser = Parser::new_from_str(source);
    for event in parser {
        let (event, span) = event.map_err(|error| {
            Diagnostic::error(
                position(error.marker()),
                "",
                format!("YAML syntax error: {}", error.info()),
            )
            .with_hint("check indentation and quoting around this position")
        })?;
        builder.push(event, position(&span.start))?;
    }
    let root = match builder.documents.len() {
        0 => {
            return Err(Diagnostic::error(
                Position { line: 1, column: 1 },
                "",
                "the file is empty",
            )
            .with_hint(
                "a blueprint starts with `apiVersion: ballast.dev/v1` and `kind: Blueprint`",
            ));
        }
        1 => builder.documents.remove(0),
        _ => {
            let second = builder.documents[1].position;
            return Err(Diagnostic::error(
                second,
                "",
                "the file holds more than one YAML document",
            )
            .with_hint("put each blueprint in a file of its own"));
        }
    };
    Ok((root, builder.duplicates))
}

enum Frame {
    Mapping {
        entries: Vec<(Key, Node)>,
        pending_key: Option<Key>,
        position: Position,
        anchor: usize,
    },
    Sequence {
        items: Vec<Node>,
        position: Position,
        anchor: usize,
    },
}

#[derive(Default)]
struct TreeBuilder {
    stack: Vec<Frame>,
    documents: Vec<Node>,
    anchors: HashMap<usize, Node>,
    duplicates: Vec<Diagnostic>,
}

impl TreeBuilder {
    fn push(&mut self, event: Event<'_>, at: Position) -> Result<(), Diagnostic> {
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                let node = Node {
                    value: NodeValue::Scalar(Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    }),
                    position: at,
                };
                self.remember(anchor, &node);
                self.complete(node)?;
            }
            Event::SequenceStart(_, anchor, _) => self.stack.push(Frame::Sequence {
                items: Vec::new(),
                position: at,
                anchor,
            }),
            Event::MappingStart(_, anchor, _) => self.stack.push(Frame::Mapping {
                entries: Vec::new(),
                pending_key: None,
                position: at,
                anchor,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::Sequence {
                        items,
                        position,
                        anchor,
                    }) => {
                        let node = Node {
                            value: NodeValue::Sequence(items),
                            position,
                        };
                        self.remember(anchor, &node);
                        node
                    }
                    Some(Frame::Mapping {
                        entries,
                        position,
                        anchor,
                        ..
                    }) => {
                        let node = Node {
                            value: NodeValue::Mapping(entries),
                            position,
                        };
                        self.remember(anchor, &node);
                        node
                    }
                    None => return Ok(()),
                };
                self.complete(node)?;
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().ok_or_else(|| {
                    Diagnostic::error(at, "", "alias refers to an unknown anchor")
                })?;
                let node = Node {
                    position: at,
                    ..node
                };
                self.complete(node)?;
            }
            Event::UnresolvedAlias(name) => {
                return Err(Diagnostic::error(
                    at,
                    "",
                    format!("alias `*{name}` has no anchor before it"),
                )
                .with_hint("define `&name` before using `*name`"));
            }
            _ => {}
        }
        Ok(())
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }

    fn complete(&mut self, node: Node) -> Result<(), Diagnostic> {
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(Frame::Sequence { items, .. }) => items.push(node),
            Some(Frame::Mapping {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => {
                    let NodeValue::Scalar(scalar) = node.value else {
                        return Err(Diagnostic::error(
                            node.position,
                            "",
                            "mapping keys must be plain strings",
                        ));
                    };
                    let key = Key {
                        text: scalar.text,
                        position: node.position,
                    };
                    if let Some((first, _)) = entries.iter().find(|(k, _)| k.text == key.text) {
                        self.duplicates.push(
                            Diagnostic::error(
                                key.position,
                                "",
                                format!(
                                    "duplicate key `{}` (first defined at line {}, column {})",
                                    key.text, first.position.line, first.position.column
                                ),
                            )
                            .with_hint("remove one of the two entries"),
                        );
                    }
                    *pending_key = Some(key);
                }
                Some(key) => {
                    if !entries.iter().any(|(k, _)| k.text == key.text) {
                        entries.push((key, node));
                    }
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let (root, dups) = parse_document("a: 1\nb:\n  - x\n").unwrap();
        assert!(dups.is_empty());
        let NodeValue::Mapping(entries) = root.value else {
            panic!("mapping expected")
        };
        assert_eq!(entries[0].0.position, Position { line: 1, column: 1 });
        assert_eq!(entries[1].1.position.line, 3);
        assert_eq!(entries[1].1.position.column, 3);
    }

    #[test]
    fn duplicate_keys_are_all_reported() {
        let (_, dups) = parse_document("a: 1\na: 2\nb: 1\nb: 3\n").unwrap();
        assert_eq!(dups.len(), 2);
        assert!(
            dups[0]
                .message
                .contains("first defined at line 1, column 1")
        );
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = parse_document("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.position.line >= 1);
        assert!(err.message.starts_with("YAML syntax error"));
    }

    #[test]
    fn aliases_are_expanded() {
        let (root, _) = parse_document("a: &x {k: v}\nb: *x\n").unwrap();
        let NodeValue::Mapping(entries) = root.value else {
            panic!()
        };
        assert!(matches!(entries[1].1.value, NodeValue::Mapping(_)));
    }
}
