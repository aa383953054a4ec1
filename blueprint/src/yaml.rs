//! A YAML document as a tree whose every node remembers where it was written.
//!
//! Validation needs the position of every key and value to report all problems at once, so the
//! blueprint is first read into this tree (with serde-saphyr's parser) and only then converted.
//!
//! A blueprint is untrusted input (`ballast validate` runs on pull requests, `ballast run` on
//! whatever the file says now), so reading it is bounded: the text is at most
//! [`MAX_SOURCE_BYTES`], the tree at most [`MAX_NODES`] nodes and [`MAX_SCALAR_BYTES`] of scalar
//! text *after alias expansion*, and at most [`MAX_DEPTH`] collections deep. Without the
//! expansion budget a few hundred bytes of nested aliases ("billion laughs") expand to gigabytes.
//! serde-saphyr's own `Budget` guards only its deserializer; this tree is built from the raw
//! parser events (for the positions), so it keeps its own count, charged *before* an alias is
//! copied.

use serde_saphyr::granit_parser::{Event, Marker, Parser, ScalarStyle, Tag};
use std::collections::HashMap;

use crate::diagnostic::{Diagnostic, Position};

/// Largest blueprint text accepted; the seed `banking.yaml` is about 7 KiB.
pub const MAX_SOURCE_BYTES: usize = 1024 * 1024;
/// Most nodes (scalars, mappings, lists) the document may expand to, aliases included.
pub const MAX_NODES: usize = 100_000;
/// Most bytes of scalar text the document may expand to, aliases included.
pub const MAX_SCALAR_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of mappings and lists; a blueprint needs fewer than ten levels, and later
/// passes walk the tree recursively.
pub const MAX_DEPTH: usize = 64;

/// What a subtree costs when it is copied for an alias.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    nodes: usize,
    bytes: usize,
}

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
    Position::new(marker.line(), marker.col() + 1)
}

/// Reads exactly one YAML document. Duplicate keys and YAML tags are reported (all of them) but do not stop
/// reading; a syntax error does, since nothing after it can be trusted.
pub fn parse_document(source: &str) -> Result<(Node, Vec<Diagnostic>), Diagnostic> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(too_large(source.len()));
    }
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
            return Err(
                Diagnostic::error(Position::new(1, 1), "", "the file is empty").with_hint(
                    "a blueprint starts with `apiVersion: ballast.dev/v1` and `kind: Blueprint`",
                ),
            );
        }
        1 => builder.documents.remove(0),
        _ => {
            let second = builder
                .documents
                .get(1)
                .map_or(Position::new(1, 1), |d| d.position);
            return Err(Diagnostic::error(
                second,
                "",
                "the file holds more than one YAML document",
            )
            .with_hint("put each blueprint in a file of its own"));
        }
    };
    Ok((root, builder.problems))
}

/// The error for a text over [`MAX_SOURCE_BYTES`].
pub fn too_large(len: usize) -> Diagnostic {
    Diagnostic::error(
        Position::new(1, 1),
        "",
        format!(
            "the file is {len} bytes or more, over the {MAX_SOURCE_BYTES}-byte limit for a blueprint"
        ),
    )
    .with_hint("a blueprint describes one stack in a few kilobytes; split it into several files")
}

/// The error for bytes that are not UTF-8, positioned at the first bad byte.
pub fn not_utf8(bytes: &[u8], error: &std::str::Utf8Error) -> Diagnostic {
    let offset = error.valid_up_to();
    let valid = bytes.get(..offset).unwrap_or_default();
    let line = 1 + valid.iter().filter(|b| **b == b'\n').count();
    let line_start = valid
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i.saturating_add(1));
    // The prefix is valid UTF-8, so the column counts characters like the parser's markers.
    let column = 1 + std::str::from_utf8(valid.get(line_start..).unwrap_or_default())
        .map_or(0, |s| s.chars().count());
    let byte = bytes
        .get(offset)
        .map_or_else(String::new, |b| format!(" 0x{b:02x}"));
    Diagnostic::error(
        Position::new(line, column),
        "",
        format!("the file is not UTF-8 text: invalid byte{byte} at byte offset {offset}"),
    )
    .with_hint("save the blueprint as UTF-8 (YAML files are text; is this the right file?)")
}

enum Frame {
    Mapping {
        entries: Vec<(Key, Node)>,
        /// Keys seen so far and where: duplicate detection stays linear on huge mappings.
        seen: HashMap<String, Position>,
        pending_key: Option<Key>,
        position: Position,
        anchor: usize,
        start: Cost,
    },
    Sequence {
        items: Vec<Node>,
        position: Position,
        anchor: usize,
        start: Cost,
    },
}

#[derive(Default)]
struct TreeBuilder {
    stack: Vec<Frame>,
    documents: Vec<Node>,
    anchors: HashMap<usize, (Node, Cost)>,
    /// Problems that do not stop reading (duplicate keys, YAML tags); all are reported.
    problems: Vec<Diagnostic>,
    /// Everything built so far, alias copies included.
    spent: Cost,
}

impl TreeBuilder {
    fn push(&mut self, event: Event<'_>, at: Position) -> Result<(), Diagnostic> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                // `!!str` is the one tag with a meaning here: the scalar is a string, as if quoted.
                let explicit_string = tag.as_deref().and_then(Tag::core_suffix) == Some("str");
                if !explicit_string {
                    self.refuse_tag(tag.as_deref(), at);
                }
                let before = self.spent;
                self.charge(
                    Cost {
                        nodes: 1,
                        bytes: text.len(),
                    },
                    at,
                )?;
                let node = Node {
                    value: NodeValue::Scalar(Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain && !explicit_string,
                    }),
                    position: at,
                };
                self.remember(anchor, &node, before);
                self.complete(node)?;
            }
            Event::SequenceStart(_, anchor, tag) => {
                self.refuse_tag(tag.as_deref(), at);
                let start = self.open(at)?;
                self.stack.push(Frame::Sequence {
                    items: Vec::new(),
                    position: at,
                    anchor,
                    start,
                });
            }
            Event::MappingStart(_, anchor, tag) => {
                self.refuse_tag(tag.as_deref(), at);
                let start = self.open(at)?;
                self.stack.push(Frame::Mapping {
                    entries: Vec::new(),
                    seen: HashMap::new(),
                    pending_key: None,
                    position: at,
                    anchor,
                    start,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::Sequence {
                        items,
                        position,
                        anchor,
                        start,
                    }) => {
                        let node = Node {
                            value: NodeValue::Sequence(items),
                            position,
                        };
                        self.remember(anchor, &node, start);
                        node
                    }
                    Some(Frame::Mapping {
                        entries,
                        position,
                        anchor,
                        start,
                        ..
                    }) => {
                        let node = Node {
                            value: NodeValue::Mapping(entries),
                            position,
                        };
                        self.remember(anchor, &node, start);
                        node
                    }
                    None => return Ok(()),
                };
                self.complete(node)?;
            }
            Event::Alias(id) => {
                let cost = self
                    .anchors
                    .get(&id)
                    .map(|(_, cost)| *cost)
                    .ok_or_else(|| {
                        Diagnostic::error(at, "", "alias refers to an unknown anchor")
                    })?;
                // Charged before the copy is made: the budget bounds memory, not just time.
                self.charge(cost, at)?;
                let node = self
                    .anchors
                    .get(&id)
                    .map(|(node, _)| node.clone())
                    .ok_or_else(|| {
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

    /// Reports a YAML tag (`!Ref`, `!!int`, …): a blueprint has no tags, and ignoring one would
    /// silently read `!Ref data` as the string `data`. Reading goes on, so every tag is listed.
    fn refuse_tag(&mut self, tag: Option<&Tag>, at: Position) {
        let Some(tag) = tag else { return };
        let written = format!("{}{}", tag.original_handle(), tag.suffix());
        self.problems.push(
            Diagnostic::error(at, "", format!("YAML tag `{written}` is not supported"))
                .with_hint(
                    "blueprints are plain YAML: refer to another resource by its blueprint name (e.g. `kmsKey: data`), and quote a value to make it a string",
                ),
        );
    }

    /// Starts a collection: checks the depth and charges one node; returns the cost so far.
    fn open(&mut self, at: Position) -> Result<Cost, Diagnostic> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Diagnostic::error(
                at,
                "",
                format!("the document nests mappings and lists more than {MAX_DEPTH} levels deep"),
            )
            .with_hint("a blueprint needs only a few levels; check for runaway nesting"));
        }
        let before = self.spent;
        self.charge(Cost { nodes: 1, bytes: 0 }, at)?;
        Ok(before)
    }

    fn charge(&mut self, cost: Cost, at: Position) -> Result<(), Diagnostic> {
        let nodes = self.spent.nodes.saturating_add(cost.nodes);
        let bytes = self.spent.bytes.saturating_add(cost.bytes);
        if nodes > MAX_NODES || bytes > MAX_SCALAR_BYTES {
            return Err(Diagnostic::error(
                at,
                "",
                format!(
                    "the document expands to more than {MAX_NODES} nodes or {MAX_SCALAR_BYTES} bytes of text (aliases counted at every use)"
                ),
            )
            .with_hint(
                "a blueprint needs far less; remove the nested aliases (`*name`) that multiply the document",
            ));
        }
        self.spent = Cost { nodes, bytes };
        Ok(())
    }

    /// Keeps an anchored node for its aliases, with what it cost to build (copies repeat it).
    fn remember(&mut self, anchor: usize, node: &Node, start: Cost) {
        if anchor != 0 {
            let cost = Cost {
                nodes: self.spent.nodes.saturating_sub(start.nodes),
                bytes: self.spent.bytes.saturating_sub(start.bytes),
            };
            self.anchors.insert(anchor, (node.clone(), cost));
        }
    }

    fn complete(&mut self, node: Node) -> Result<(), Diagnostic> {
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(Frame::Sequence { items, .. }) => items.push(node),
            Some(Frame::Mapping {
                entries,
                seen,
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
                    if let Some(first) = seen.get(&key.text) {
                        self.problems.push(
                            Diagnostic::error(
                                key.position,
                                "",
                                format!(
                                    "duplicate key `{}` (first defined at line {}, column {})",
                                    key.text, first.line, first.column
                                ),
                            )
                            .with_hint("remove one of the two entries"),
                        );
                    }
                    *pending_key = Some(key);
                }
                Some(key) => {
                    // The first definition wins; a repeat's value was reported and is dropped.
                    if !seen.contains_key(&key.text) {
                        seen.insert(key.text.clone(), key.position);
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
    fn core_str_tag_makes_a_string_and_other_tags_are_reported() {
        let (root, problems) = parse_document("a: !!str 123\nb: !Ref x\nc: !!int 5\n").unwrap();
        let NodeValue::Mapping(entries) = root.value else {
            panic!("mapping expected")
        };
        let NodeValue::Scalar(a) = &entries[0].1.value else {
            panic!("scalar expected")
        };
        assert!(!a.plain, "`!!str` reads as a quoted string");
        let messages: Vec<_> = problems.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "YAML tag `!Ref` is not supported",
                "YAML tag `!!int` is not supported"
            ]
        );
    }

    #[test]
    fn positions_are_one_based() {
        let (root, dups) = parse_document("a: 1\nb:\n  - x\n").unwrap();
        assert!(dups.is_empty());
        let NodeValue::Mapping(entries) = root.value else {
            panic!("mapping expected")
        };
        assert_eq!(entries[0].0.position, Position::new(1, 1));
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
    fn nested_aliases_stop_at_the_budget_with_the_position_of_the_alias() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..10 {
            let uses = vec![format!("*a{}", level - 1); 10].join(", ");
            text.push_str(&format!("a{level}: &a{level} [{uses}]\n"));
        }
        let started = std::time::Instant::now();
        let err = parse_document(&text).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(err.message.contains("expands to more than"), "{err:?}");
        // Level 3 holds 11 111 nodes; the eighth use of it on line 5 crosses 100 000.
        assert_eq!(err.position, Position::new(5, 45));
    }

    #[test]
    fn aliases_within_the_budget_still_work() {
        let (root, _) = parse_document("a: &a [1, 2]\nb: [*a, *a, *a]\n").unwrap();
        let NodeValue::Mapping(entries) = root.value else {
            panic!()
        };
        let NodeValue::Sequence(items) = &entries[1].1.value else {
            panic!()
        };
        assert_eq!(items.len(), 3);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        let err = parse_document(&text).unwrap_err();
        assert!(err.message.contains("levels deep"), "{err:?}");
        let ok = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_document(&ok).is_ok());
    }

    #[test]
    fn an_oversized_text_is_refused_before_parsing() {
        let text = "#".repeat(MAX_SOURCE_BYTES + 1);
        let err = parse_document(&text).unwrap_err();
        assert_eq!(err.position, Position::new(1, 1));
        assert!(err.message.contains("1048577 bytes"), "{err:?}");
    }

    #[test]
    fn invalid_utf8_is_positioned_by_line_column_and_offset() {
        let bytes = [b"a: 1\nb: \xc3\xa9".as_slice(), &[0xff, b'\n']].concat();
        let error = std::str::from_utf8(&bytes).unwrap_err();
        let d = not_utf8(&bytes, &error);
        // 'é' is one column but two bytes.
        assert_eq!(d.position, Position::new(2, 5));
        assert!(
            d.message.contains("invalid byte 0xff at byte offset 10"),
            "{d:?}"
        );
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
