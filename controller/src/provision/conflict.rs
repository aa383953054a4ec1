//! Why a resource the blueprint declares cannot be touched: it exists in AWS but is not this
//! blueprint's. Apply refuses to start while any such conflict is unresolved.

use std::fmt;

use ballast_blueprint::{ResourceId, ResourceKind};

/// Why an existing resource is not this blueprint's to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictReason {
    /// Exists without Ballast's ownership tags (created by hand or by another tool).
    NotCreatedByBallast {
        kind: ResourceKind,
        physical_name: String,
    },
    /// Carries the ownership tag of another blueprint.
    OwnedByBlueprint {
        kind: ResourceKind,
        physical_name: String,
        owner: String,
    },
}

impl fmt::Display for ConflictReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotCreatedByBallast {
                kind,
                physical_name,
            } => write!(
                f,
                "{kind} `{physical_name}` exists but was not created by Ballast; set `adopt: true` to take it over"
            ),
            Self::OwnedByBlueprint {
                kind,
                physical_name,
                owner,
            } => write!(
                f,
                "{kind} `{physical_name}` belongs to blueprint `{owner}`; set `adopt: true` to take it over"
            ),
        }
    }
}

/// Plans and JSON output carry the reason as its sentence, as before it was typed.
impl serde::Serialize for ConflictReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One declared resource that apply may not touch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Conflict {
    pub resource: ResourceId,
    pub reason: ConflictReason,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.resource, self.reason)
    }
}

/// The conflicts as `EngineError::Conflicts` renders them: one indented line each.
pub fn render(conflicts: &[Conflict]) -> String {
    conflicts
        .iter()
        .map(|c| format!("  {c}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_render_as_the_plan_sentences() {
        let unowned = ConflictReason::NotCreatedByBallast {
            kind: ResourceKind::Queue,
            physical_name: "banking-transactions".into(),
        };
        assert_eq!(
            unowned.to_string(),
            "queue `banking-transactions` exists but was not created by Ballast; set `adopt: true` to take it over"
        );
        let other = ConflictReason::OwnedByBlueprint {
            kind: ResourceKind::Table,
            physical_name: "banking-ledger".into(),
            owner: "payments".into(),
        };
        assert_eq!(
            serde_json::to_value(&other).unwrap(),
            serde_json::json!(
                "table `banking-ledger` belongs to blueprint `payments`; set `adopt: true` to take it over"
            )
        );
        let conflicts = [
            Conflict {
                resource: ResourceId::new(ResourceKind::Queue, "transactions"),
                reason: unowned,
            },
            Conflict {
                resource: ResourceId::new(ResourceKind::Table, "ledger"),
                reason: other,
            },
        ];
        assert_eq!(
            render(&conflicts),
            "  queue/transactions: queue `banking-transactions` exists but was not created by Ballast; set `adopt: true` to take it over\n  table/ledger: table `banking-ledger` belongs to blueprint `payments`; set `adopt: true` to take it over"
        );
    }
}
