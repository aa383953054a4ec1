//! CloudWatch dashboards.
//!
//! The dashboard body is built by a pure function ([`body`]) and compared semantically: the live
//! body is parsed, and its `widgets` array compared as JSON (key order, whitespace and `60` vs
//! `60.0` do not matter).
//!
//! Ownership: CloudWatch dashboards cannot carry tags, and a name prefix proves nothing (blueprint
//! `shop` would claim every dashboard of blueprint `shop-eu`, or a hand-made `shop-ops`). So the
//! body carries a marker instead: the first widget is a `text` widget reading
//! "Managed by Ballast (blueprint `<name>`) …". CloudWatch (and moto) store the body as given, so
//! the marker survives the round trip. A dashboard whose body has the marker for this blueprint is
//! owned; one with another blueprint's marker is that blueprint's; one without a marker (or
//! where someone removed it) is not Ballast's, and is only taken over with `adopt: true`.

use ballast_aws::SdkResultExt;
use ballast_blueprint::{Blueprint, Dashboard, ResourceId, ResourceKind, Tags, WidgetView};
use futures::future::try_join_all;
use serde_json::{Map, Value, json};
use tracing::{instrument, warn};

use super::alarm::{resolve_metric, statistic_name};
use super::{ApplyContext, ObserveContext, Observed, ResourceOps, declared};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{Changes, DesiredState, LiveState, Ownership, Resolved};
use crate::provision::typed::{Desired, FieldValue, Live, TypedDesired, TypedLive, Want};

pub struct Dashboards;

crate::provision::state::field_names! {
    /// The fields of Dashboards, as plan and drift output name them.
    pub enum DashboardField {
        Widgets = "widgets",
    }
}

crate::provision::typed::typed_state! {
    /// A dashboard's compared state: `desired` builds it from the blueprint ([`body`]),
    /// `observe` from the body `GetDashboard` returns ([`live_state`]).
    pub struct DashboardState for DashboardField {
        /// The body's `widgets`, the ownership marker first.
        Widgets => widgets: Widgets = Enforced,
    }
}

/// A dashboard body's `widgets` array, compared as JSON: the live one is parsed and its
/// numbers normalized ([`live_state`]), so key order, whitespace and `60` vs `60.0` do not
/// matter. `null` when the live body is not a JSON object with `widgets`.
#[derive(Debug, Clone, PartialEq)]
pub struct Widgets(pub Value);

impl FieldValue for Widgets {
    fn to_value(&self) -> Value {
        self.0.clone()
    }
    fn is_unset(&self) -> bool {
        self.0.is_null()
    }
}

/// CloudWatch's dashboard grid is 24 columns wide.
const GRID_WIDTH: u32 = 24;
const MARKER_PREFIX: &str = "Managed by Ballast (blueprint `";
const MARKER_SUFFIX: &str = "`). Changes made here are overwritten by the next `ballast apply`.";

/// The ownership marker's text for blueprint `blueprint`.
pub fn marker(blueprint: &str) -> String {
    format!("{MARKER_PREFIX}{blueprint}{MARKER_SUFFIX}")
}

/// The blueprint named by the ownership marker of a dashboard's widgets, if any.
pub fn marker_owner(widgets: &Value) -> Option<String> {
    widgets.as_array()?.iter().find_map(|w| {
        if w.get("type").and_then(Value::as_str) != Some("text") {
            return None;
        }
        let rest = w
            .get("properties")?
            .get("markdown")?
            .as_str()?
            .strip_prefix(MARKER_PREFIX)?;
        let (owner, tail) = rest.split_once('`')?;
        (format!("`{tail}") == MARKER_SUFFIX).then(|| owner.to_string())
    })
}

/// The dashboard body CloudWatch takes: the ownership marker on the first row, then the
/// blueprint's widgets laid out left to right, wrapping at 24 columns.
pub fn body(bp: &Blueprint, d: &Dashboard) -> Value {
    let mut widgets = vec![json!({
        "type": "text",
        "x": 0,
        "y": 0,
        "width": GRID_WIDTH,
        "height": 1,
        "properties": {"markdown": marker(&bp.metadata.name)}
    })];
    let (mut x, mut y, mut row_height) = (0u32, 1u32, 0u32);
    for w in &d.widgets {
        let width = w.width.clamp(1, GRID_WIDTH);
        if x + width > GRID_WIDTH {
            x = 0;
            y += row_height;
            row_height = 0;
        }
        let metrics: Vec<Value> = w
            .metrics
            .iter()
            .map(|m| {
                let (namespace, dimensions) = resolve_metric(bp, &m.metric);
                let mut line = vec![json!(namespace), json!(m.metric.metric)];
                for (name, value) in dimensions {
                    line.push(json!(name));
                    line.push(json!(value));
                }
                let mut options = Map::new();
                options.insert(
                    "stat".into(),
                    json!(statistic_name(
                        m.statistic.unwrap_or(ballast_blueprint::Statistic::Average)
                    )),
                );
                if let Some(label) = &m.label {
                    options.insert("label".into(), json!(label));
                }
                line.push(Value::Object(options));
                Value::Array(line)
            })
            .collect();
        let view = match w.view {
            WidgetView::TimeSeries => "timeSeries",
            WidgetView::SingleValue => "singleValue",
        };
        widgets.push(json!({
            "type": "metric",
            "x": x,
            "y": y,
            "width": width,
            "height": w.height,
            "properties": {
                "metrics": metrics,
                "period": w.period.as_secs(),
                "view": view,
                "region": bp.metadata.region,
                "title": w.title,
            }
        }));
        x += width;
        row_height = row_height.max(w.height);
    }
    json!({ "widgets": widgets })
}

/// Numbers written as whole floats (`60.0`) read as integers, so they compare equal to ours.
fn normalize_numbers(v: Value) -> Value {
    match v {
        Value::Number(n) if n.as_i64().is_none() && n.as_u64().is_none() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
                json!(f as i64)
            }
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(normalize_numbers).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, normalize_numbers(v)))
                .collect(),
        ),
        other => other,
    }
}

/// A live dashboard body in the shape `desired` produces: `widgets` only.
pub fn live_state(body: Option<&str>) -> DashboardState<Live> {
    let widgets = body
        .and_then(|b| serde_json::from_str::<Value>(b).ok())
        // `get_mut`, not `b["widgets"]`: a body that is not a JSON object must not panic.
        .map(|mut b| {
            normalize_numbers(b.get_mut("widgets").map(Value::take).unwrap_or(Value::Null))
        })
        .unwrap_or(Value::Null);
    DashboardState {
        widgets: Some(Widgets(widgets)),
    }
}

/// The dashboard's typed desired state: the body [`body`] builds.
fn desired_state(bp: &Blueprint, d: &Dashboard) -> DashboardState<Desired> {
    let mut body = body(bp, d);
    let widgets = body
        .get_mut("widgets")
        .map(Value::take)
        .unwrap_or(Value::Null);
    DashboardState {
        widgets: Want::Exact(Widgets(widgets)),
    }
}

fn ownership(state: &DashboardState<Live>, blueprint: &str) -> Ownership {
    match state.widgets.as_ref().and_then(|w| marker_owner(&w.0)) {
        Some(owner) if owner == blueprint => Ownership::Owned,
        Some(owner) => Ownership::OwnedByOther(owner),
        None => Ownership::Unowned,
    }
}

#[instrument(skip_all, fields(dashboard = %desired.physical_name))]
async fn put_dashboard(
    ctx: &ApplyContext<'_>,
    desired: &DesiredState,
) -> Result<(), ProvisionError> {
    let want = desired.state::<DashboardState<Desired>>()?;
    let widgets = want
        .widgets
        .exact()
        .map(|w| w.0.clone())
        .unwrap_or(json!([]));
    let body = json!({ "widgets": widgets });
    let out = ctx
        .clients
        .cloudwatch
        .put_dashboard()
        .dashboard_name(&desired.physical_name)
        .dashboard_body(body.to_string())
        .send()
        .await
        .classify("cloudwatch:PutDashboard")
        .map_err(ProvisionError::aws(&desired.id))?;
    for m in out.dashboard_validation_messages() {
        warn!(
            data_path = m.data_path().unwrap_or_default(),
            message = m.message().unwrap_or_default(),
            "dashboard validation message"
        );
    }
    Ok(())
}

/// What `GetDashboard` returned for one dashboard.
struct Fetched {
    arn: Option<String>,
    body: Option<String>,
}

/// `None` when the dashboard does not exist.
#[instrument(skip_all, fields(dashboard = %name))]
async fn get_dashboard(
    cw: &aws_sdk_cloudwatch::Client,
    id: &ResourceId,
    name: &str,
) -> Result<Option<Fetched>, ProvisionError> {
    match cw
        .get_dashboard()
        .dashboard_name(name)
        .send()
        .await
        .classify("cloudwatch:GetDashboard")
    {
        Ok(out) => Ok(Some(Fetched {
            arn: out.dashboard_arn,
            body: out.dashboard_body,
        })),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(ProvisionError::aws(id)(e)),
    }
}

impl ResourceOps for Dashboards {
    const KIND: ResourceKind = ResourceKind::Dashboard;
    type Field = DashboardField;

    fn desired(bp: &Blueprint, _resolved: &Resolved) -> Vec<DesiredState> {
        bp.spec
            .dashboards
            .iter()
            .map(|d| {
                let state = desired_state(bp, d);
                DesiredState {
                    id: ResourceId::new(Self::KIND, &d.name),
                    physical_name: bp.dashboard_name(d),
                    fields: state.expected_fields(),
                    // Dashboards have no tags; ownership is the marker inside `widgets`.
                    tags: Tags::new(),
                    adopt: d.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        d.deletion_policy,
                    ),
                    typed: TypedDesired::new(state),
                }
            })
            .collect()
    }

    #[instrument(skip_all, fields(kind = "dashboard"))]
    async fn observe(ctx: &ObserveContext<'_>) -> Result<Observed, ProvisionError> {
        let cw = ctx.clients.cloudwatch();
        let bp = ctx.blueprint;
        let declared = declared(bp, Self::KIND);
        let prefix = format!("{}-", bp.metadata.name);
        let entries = cw
            .list_dashboards()
            .dashboard_name_prefix(&prefix)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .classify("cloudwatch:ListDashboards")
            .map_err(ProvisionError::aws(&ResourceId::new(Self::KIND, "*")))?;
        let mut candidates: Vec<(ResourceId, bool, String)> = Vec::new();
        for name in entries.into_iter().filter_map(|e| e.dashboard_name) {
            match declared.iter().find(|(_, n)| *n == name) {
                Some((id, _)) => candidates.push((id.clone(), true, name)),
                None => candidates.push((
                    ResourceId::new(Self::KIND, name.trim_start_matches(&prefix)),
                    false,
                    name,
                )),
            }
        }
        for (id, name) in &declared {
            if !name.starts_with(&prefix) {
                candidates.push((id.clone(), true, name.clone()));
            }
        }
        let bodies = try_join_all(
            candidates
                .iter()
                .map(|(id, _, name)| get_dashboard(cw, id, name)),
        )
        .await?;
        let mut observed = Observed::default();
        for ((id, is_declared, name), found) in candidates.into_iter().zip(bodies) {
            let Some(Fetched { arn, body }) = found else {
                continue;
            };
            let state = live_state(body.as_deref());
            let live = LiveState {
                id,
                physical_id: name.clone(),
                physical_name: name,
                arn,
                ownership: ownership(&state, &bp.metadata.name),
                tags: Tags::new(),
                fields: state.live_fields(),
                typed: TypedLive::new(state),
            };
            observed.file(live, is_declared);
        }
        Ok(observed)
    }

    #[instrument(skip_all, fields(dashboard = %desired.physical_name))]
    async fn create(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
    ) -> Result<LiveState, ProvisionError> {
        put_dashboard(ctx, desired).await?;
        let want = desired.state::<DashboardState<Desired>>()?;
        let state = DashboardState {
            widgets: want.widgets.exact().cloned(),
        };
        Ok(LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id: desired.physical_name.clone(),
            // PutDashboard does not return the ARN, and nothing refers to dashboards.
            arn: None,
            ownership: Ownership::Owned,
            tags: Tags::new(),
            fields: state.live_fields(),
            typed: TypedLive::new(state),
        })
    }

    #[instrument(skip_all, fields(dashboard = %desired.physical_name))]
    async fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        _live: &LiveState,
        changes: &[FieldChange],
    ) -> Result<(), ProvisionError> {
        let changes = Changes::<DashboardField>::of(changes);
        if changes.is_empty() {
            return Ok(());
        }
        put_dashboard(ctx, desired).await
    }

    #[instrument(skip_all, fields(dashboard = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        ProvisionError::unless_gone(
            &live.id,
            ctx.clients
                .cloudwatch
                .delete_dashboards()
                .dashboard_names(&live.physical_id)
                .send()
                .await
                .classify("cloudwatch:DeleteDashboards"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::state::{FieldClass, FieldName};

    fn blueprint() -> Blueprint {
        ballast_blueprint::parse(
            "t.yaml",
            r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {name: shop, region: eu-west-1}
spec:
  queues:
    - name: orders
  dashboards:
    - name: ops
      widgets:
        - title: Depth
          metrics:
            - { queue: orders, metric: ApproximateNumberOfMessagesVisible, statistic: Maximum, label: waiting }
            - { namespace: Shop/Api, metric: Latency, dimensions: {Route: checkout} }
          width: 16
        - title: Errors
          view: singleValue
          period: 5m
          metrics:
            - { namespace: Shop/Api, metric: Errors, statistic: Sum }
          width: 12
          height: 3
        - title: Age
          metrics:
            - { queue: orders, metric: ApproximateAgeOfOldestMessage }
          width: 8
"#,
        )
        .unwrap()
        .blueprint
    }

    #[test]
    fn the_body_has_the_marker_and_laid_out_metric_widgets() {
        let bp = blueprint();
        let b = body(&bp, &bp.spec.dashboards[0]);
        let widgets = b["widgets"].as_array().unwrap();
        assert_eq!(widgets.len(), 4);
        assert_eq!(widgets[0]["type"], "text");
        assert_eq!(marker_owner(&b["widgets"]).as_deref(), Some("shop"));
        assert_eq!(
            widgets[1],
            json!({
                "type": "metric", "x": 0, "y": 1, "width": 16, "height": 6,
                "properties": {
                    "metrics": [
                        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "shop-orders",
                         {"stat": "Maximum", "label": "waiting"}],
                        ["Shop/Api", "Latency", "Route", "checkout", {"stat": "Average"}]
                    ],
                    "period": 60, "view": "timeSeries", "region": "eu-west-1", "title": "Depth"
                }
            })
        );
        // 16 + 12 > 24: wraps below the tallest widget of the first row.
        assert_eq!(
            (widgets[2]["x"].clone(), widgets[2]["y"].clone()),
            (json!(0), json!(7))
        );
        assert_eq!(widgets[2]["properties"]["view"], "singleValue");
        assert_eq!(widgets[2]["properties"]["period"], 300);
        // 12 + 8 fits next to it.
        assert_eq!(
            (widgets[3]["x"].clone(), widgets[3]["y"].clone()),
            (json!(12), json!(7))
        );
    }

    #[test]
    fn live_bodies_compare_semantically() {
        let bp = blueprint();
        let want = desired_state(&bp, &bp.spec.dashboards[0]);
        let widgets = &want.widgets.exact().unwrap().0;
        // Reordered keys, whitespace and float-spelled integers are the same body.
        let mut text = serde_json::to_string_pretty(&json!({ "widgets": widgets })).unwrap();
        text = text.replace("\"period\": 60", "\"period\": 60.0");
        assert!(text.contains("60.0"));
        let live = live_state(Some(&text));
        assert_eq!(want.changes(&live), vec![]);
        assert_eq!(ownership(&live, "shop"), Ownership::Owned);
        assert_eq!(
            ownership(&live, "shop-eu"),
            Ownership::OwnedByOther("shop".into())
        );
        let unmarked = live_state(Some(r#"{"widgets": []}"#));
        assert_eq!(ownership(&unmarked, "shop"), Ownership::Unowned);
        assert_eq!(
            live_state(Some("not json")).widgets,
            Some(Widgets(Value::Null))
        );
        assert_eq!(
            live_state(Some("not json")).live_fields()[DashboardField::Widgets.name()],
            Value::Null
        );
    }

    /// A widget edited by hand is exactly one change (`widgets`), the same change the untyped
    /// comparison of the rendered fields finds: plan output is unchanged by the typing.
    #[test]
    fn an_edited_widget_is_exactly_one_change() {
        use crate::provision::diff::Action;
        use crate::provision::typed::Change;
        use crate::provision::typed::testing::{changed_fields, owned_live, typed_diff};
        let bp = blueprint();
        let desired = Dashboards::desired(&bp, &Resolved::default());
        let want = desired[0].state::<DashboardState<Desired>>().unwrap();
        let mut edited = want.widgets.exact().unwrap().0.clone();
        edited[1]["properties"]["title"] = json!("Depth (edited)");
        let body = json!({ "widgets": edited }).to_string();
        let state = live_state(Some(&body));
        let changes = want.changes(&state);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(matches!(
            &changes[0],
            Change {
                field: DashboardField::Widgets,
                class: FieldClass::Enforced,
                ..
            }
        ));
        let live = owned_live(&desired[0], state.clone(), state.live_fields());
        let action = typed_diff(&desired[0], &live);
        assert!(matches!(action, Action::Update { .. }), "{action:?}");
        assert_eq!(changed_fields(&action), [DashboardField::Widgets.name()]);
    }

    #[test]
    fn the_marker_names_exactly_one_blueprint() {
        let w = json!([{"type": "text", "properties": {"markdown": marker("a-b")}}]);
        assert_eq!(marker_owner(&w).as_deref(), Some("a-b"));
        let edited = json!([{"type": "text", "properties": {"markdown": format!("{} (edited)", marker("a"))}}]);
        assert_eq!(marker_owner(&edited), None);
    }
}
