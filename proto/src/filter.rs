//! The one filter type of model listings, best-model queries and
//! leaderboards ([`ModelFilter`]), and of datablob and template listings
//! ([`GroupedFilter`]), shared by the server and the clients.
//!
//! Callers build it (the Rust client's builder methods, the CLI from its
//! flags); [`ModelFilter::to_pb`] and [`ModelFilter::from_pb`] are the one
//! conversion to and from the `mlmeta.v1.ModelFilter` message, and
//! `from_pb` is the one place its rules are checked (limits, names, with
//! the field's path in every error); the server's store compiles the
//! validated value to SQL in one place.
//!
//! Within a filter the parts combine with AND; an empty list does not
//! filter; a list matches any of its values. Deleted records are left out
//! unless [`Deletion`] asks for them. `where_expr` is the optional filter
//! expression of the filter language (issue 16), ANDed with the rest; a
//! server without the language refuses a non-empty one.
//!
//! ```
//! use mlmeta_proto::filter::{Deletion, ModelFilter, RunStatus};
//!
//! let filter = ModelFilter::default()
//!     .datablob_group_names(["mnist"])
//!     .model_template_names(["resnet18", "resnet50"])
//!     .tag("team", "vision")
//!     .statuses([RunStatus::Finished])
//!     .deletion(Deletion::All);
//! assert_eq!(filter.model_template_names.len(), 2);
//! let message = filter.to_pb();
//! assert_eq!(ModelFilter::from_pb(Some(message)).unwrap(), filter);
//! ```

use std::collections::BTreeMap;

use crate::rules::{MAX_FILTER_VALUES, MAX_TAG_VALUE_BYTES, echo, name_rule, text_rule};
use crate::v1 as pb;

/// Longest `where` expression, in bytes.
pub const MAX_WHERE_BYTES: usize = 4_096;

/// A filter (or other request part) that breaks a rule: `field` is its
/// path in the request (`filter.tags["k"]`), `rule` says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct InvalidFilter {
    /// Path of the field in the request.
    pub field: String,
    /// The rule it breaks, in words.
    pub rule: String,
}

impl InvalidFilter {
    fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

type Result<T> = std::result::Result<T, InvalidFilter>;

/// Where a model's run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RunStatus {
    /// Put, never started.
    Created,
    /// Started; heartbeats or epochs arriving.
    Running,
    /// Ended as a success.
    Finished,
    /// Ended as a failure.
    Failed,
    /// Stopped from outside.
    Killed,
    /// Was running, went silent past its heartbeat timeout (the server
    /// marks it; a heartbeat, start or epoch makes it running again).
    Crashed,
}

impl RunStatus {
    /// Every status, in declaration order.
    pub const ALL: [Self; 6] = [
        Self::Created,
        Self::Running,
        Self::Finished,
        Self::Failed,
        Self::Killed,
        Self::Crashed,
    ];

    /// Lower-case name: `created`, `running`, `finished`, `failed`,
    /// `killed`, `crashed` (also its `Display`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Failed => "failed",
            Self::Killed => "killed",
            Self::Crashed => "crashed",
        }
    }

    /// Upper-case name (`CREATED`, ...), as the server stores it and
    /// writes it in messages.
    pub fn as_column(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Running => "RUNNING",
            Self::Finished => "FINISHED",
            Self::Failed => "FAILED",
            Self::Killed => "KILLED",
            Self::Crashed => "CRASHED",
        }
    }

    /// The status whose upper-case name is `column`.
    pub fn from_column(column: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_column() == column)
    }

    /// The status named `name` (any case).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(name))
    }

    /// Whether the run has ended (FINISHED, FAILED or KILLED).
    pub fn is_ended(self) -> bool {
        matches!(self, Self::Finished | Self::Failed | Self::Killed)
    }

    /// The protobuf value.
    pub fn to_pb(self) -> pb::RunStatus {
        match self {
            Self::Created => pb::RunStatus::Created,
            Self::Running => pb::RunStatus::Running,
            Self::Finished => pb::RunStatus::Finished,
            Self::Failed => pb::RunStatus::Failed,
            Self::Killed => pb::RunStatus::Killed,
            Self::Crashed => pb::RunStatus::Crashed,
        }
    }

    /// The status of a protobuf value; `None` for `RUN_STATUS_UNSPECIFIED`
    /// and unknown values.
    pub fn from_pb(value: i32) -> Option<Self> {
        match pb::RunStatus::try_from(value) {
            Ok(pb::RunStatus::Created) => Some(Self::Created),
            Ok(pb::RunStatus::Running) => Some(Self::Running),
            Ok(pb::RunStatus::Finished) => Some(Self::Finished),
            Ok(pb::RunStatus::Failed) => Some(Self::Failed),
            Ok(pb::RunStatus::Killed) => Some(Self::Killed),
            Ok(pb::RunStatus::Crashed) => Some(Self::Crashed),
            Ok(pb::RunStatus::Unspecified) | Err(_) => None,
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which records a listing or ranking includes by deletion state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Deletion {
    /// Only records that are not deleted (the default).
    #[default]
    LiveOnly,
    /// Only soft-deleted records (not yet purged).
    DeletedOnly,
    /// Both.
    All,
}

impl Deletion {
    /// The protobuf value.
    pub fn to_pb(self) -> pb::Deletion {
        match self {
            Self::LiveOnly => pb::Deletion::LiveOnly,
            Self::DeletedOnly => pb::Deletion::DeletedOnly,
            Self::All => pb::Deletion::All,
        }
    }

    /// The value of the protobuf field `field`.
    pub fn from_pb(field: &str, value: i32) -> Result<Self> {
        match pb::Deletion::try_from(value) {
            Ok(pb::Deletion::LiveOnly) => Ok(Self::LiveOnly),
            Ok(pb::Deletion::DeletedOnly) => Ok(Self::DeletedOnly),
            Ok(pb::Deletion::All) => Ok(Self::All),
            Err(_) => Err(InvalidFilter::new(
                field,
                format!(
                    "unknown value {value}: use DELETION_LIVE_ONLY (0), DELETION_DELETED_ONLY (1) or DELETION_ALL (2)"
                ),
            )),
        }
    }
}

/// Filter over datablobs or model templates.
///
/// ```
/// use mlmeta_proto::filter::GroupedFilter;
///
/// let all = GroupedFilter::default();
/// assert!(all.names.is_empty());
/// let mnist = GroupedFilter::default().group_names(["mnist"]);
/// assert_eq!(mnist.group_names, ["mnist"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct GroupedFilter {
    /// Match any of these names.
    pub names: Vec<String>,
    /// Match any of these group names.
    pub group_names: Vec<String>,
    /// Live records only unless set otherwise.
    pub deletion: Deletion,
}

impl GroupedFilter {
    /// This filter with `names` as its names.
    #[must_use]
    pub fn names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.names = strings(names);
        self
    }

    /// This filter with `group_names` as its group names.
    #[must_use]
    pub fn group_names<S: Into<String>>(mut self, group_names: impl IntoIterator<Item = S>) -> Self {
        self.group_names = strings(group_names);
        self
    }

    /// This filter including records by `deletion`.
    #[must_use]
    pub fn deletion(mut self, deletion: Deletion) -> Self {
        self.deletion = deletion;
        self
    }

    /// The message.
    pub fn to_pb(&self) -> pb::GroupedFilter {
        pb::GroupedFilter {
            names: self.names.clone(),
            group_names: self.group_names.clone(),
            deletion: self.deletion.to_pb().into(),
        }
    }

    /// The filter of message field `field` (`None`: no filter), validated.
    pub fn from_pb(field: &str, message: Option<pb::GroupedFilter>) -> Result<Self> {
        let message = message.unwrap_or_default();
        values(&format!("{field}.names"), &message.names)?;
        values(&format!("{field}.group_names"), &message.group_names)?;
        Ok(Self {
            deletion: Deletion::from_pb(&format!("{field}.deletion"), message.deletion)?,
            names: message.names,
            group_names: message.group_names,
        })
    }
}

/// Filter over models: by their own names, those of their datablob and
/// template (and their groups), tags, run status and deletion state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ModelFilter {
    /// Match any of these model names.
    pub names: Vec<String>,
    /// Match models of any of these datablobs.
    pub datablob_names: Vec<String>,
    /// Match models of datablobs in any of these groups.
    pub datablob_group_names: Vec<String>,
    /// Match models of any of these templates.
    pub model_template_names: Vec<String>,
    /// Match models of templates in any of these groups.
    pub model_template_group_names: Vec<String>,
    /// Match models having every one of these tags (key = value).
    pub tags: BTreeMap<String, String>,
    /// Match models whose run is in any of these statuses. After
    /// [`ModelFilter::from_pb`] sorted and without repeats.
    pub statuses: Vec<RunStatus>,
    /// Live models only unless set otherwise.
    pub deletion: Deletion,
    /// A filter-language expression ANDed with the rest (issue 16); `None`
    /// or empty does not filter.
    pub where_expr: Option<String>,
}

impl ModelFilter {
    /// This filter also requiring tag `key` with value `value` (several
    /// tags combine with AND).
    #[must_use]
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// This filter also requiring each of `tags` (key, value).
    #[must_use]
    pub fn tags<K: Into<String>, V: Into<String>>(mut self, tags: impl IntoIterator<Item = (K, V)>) -> Self {
        self.tags
            .extend(tags.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// This filter with `statuses` as its run statuses.
    #[must_use]
    pub fn statuses(mut self, statuses: impl IntoIterator<Item = RunStatus>) -> Self {
        self.statuses = statuses.into_iter().collect();
        self
    }

    /// This filter with `names` as its model names.
    #[must_use]
    pub fn names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.names = strings(names);
        self
    }

    /// This filter with `names` as its datablob names.
    #[must_use]
    pub fn datablob_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.datablob_names = strings(names);
        self
    }

    /// This filter with `names` as its datablob group names.
    #[must_use]
    pub fn datablob_group_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.datablob_group_names = strings(names);
        self
    }

    /// This filter with `names` as its model template names.
    #[must_use]
    pub fn model_template_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.model_template_names = strings(names);
        self
    }

    /// This filter with `names` as its model template group names.
    #[must_use]
    pub fn model_template_group_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.model_template_group_names = strings(names);
        self
    }

    /// This filter including models by `deletion` (live only by default).
    #[must_use]
    pub fn deletion(mut self, deletion: Deletion) -> Self {
        self.deletion = deletion;
        self
    }

    /// This filter with the filter-language expression `expr` (issue 16).
    #[must_use]
    pub fn where_expr(mut self, expr: impl Into<String>) -> Self {
        self.where_expr = Some(expr.into());
        self
    }

    /// Whether this filter lets every live model through.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The message.
    pub fn to_pb(&self) -> pb::ModelFilter {
        pb::ModelFilter {
            names: self.names.clone(),
            datablob_names: self.datablob_names.clone(),
            datablob_group_names: self.datablob_group_names.clone(),
            model_template_names: self.model_template_names.clone(),
            model_template_group_names: self.model_template_group_names.clone(),
            tags: self.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            statuses: self.statuses.iter().map(|s| i32::from(s.to_pb())).collect(),
            deletion: self.deletion.to_pb().into(),
            r#where: self.where_expr.clone().unwrap_or_default(),
        }
    }

    /// The filter of a request's `filter` field (`None`: no filter),
    /// validated: at most [`MAX_FILTER_VALUES`] values per list and tags,
    /// each list value a name, tag keys names and values at most
    /// [`MAX_TAG_VALUE_BYTES`], statuses known, `where` at most
    /// [`MAX_WHERE_BYTES`]. Errors name the field (`filter.names[3]`).
    pub fn from_pb(message: Option<pb::ModelFilter>) -> Result<Self> {
        let message = message.unwrap_or_default();
        let lists = [
            ("filter.names", &message.names),
            ("filter.datablob_names", &message.datablob_names),
            ("filter.datablob_group_names", &message.datablob_group_names),
            ("filter.model_template_names", &message.model_template_names),
            (
                "filter.model_template_group_names",
                &message.model_template_group_names,
            ),
        ];
        for (field, list) in lists {
            values(field, list)?;
        }
        if message.tags.len() > MAX_FILTER_VALUES {
            return Err(InvalidFilter::new(
                "filter.tags",
                format!(
                    "must hold at most {MAX_FILTER_VALUES} entries, got {}",
                    message.tags.len()
                ),
            ));
        }
        for (key, value) in &message.tags {
            // Filtering on system tags is fine: only setting them is reserved.
            name_rule(key)
                .map_err(|rule| InvalidFilter::new(format!("filter.tags[{}] (key)", echo(key)), rule))?;
            text_rule(value, MAX_TAG_VALUE_BYTES)
                .map_err(|rule| InvalidFilter::new(format!("filter.tags[{}]", echo(key)), rule))?;
        }
        if message.statuses.len() > MAX_FILTER_VALUES {
            return Err(InvalidFilter::new(
                "filter.statuses",
                format!(
                    "must hold at most {MAX_FILTER_VALUES} values, got {}",
                    message.statuses.len()
                ),
            ));
        }
        let mut statuses = message
            .statuses
            .iter()
            .enumerate()
            .map(|(i, &value)| {
                RunStatus::from_pb(value).ok_or_else(|| {
                    InvalidFilter::new(
                        format!("filter.statuses[{i}]"),
                        format!(
                            "must be a RunStatus from RUN_STATUS_CREATED (1) to RUN_STATUS_CRASHED (6), got {}",
                            status_label(value)
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // One order for one set: the page token's fingerprint does not depend
        // on how the caller listed them.
        statuses.sort_unstable();
        statuses.dedup();
        text_rule(&message.r#where, MAX_WHERE_BYTES)
            .map_err(|rule| InvalidFilter::new("filter.where", rule))?;
        if !message.r#where.is_empty() {
            crate::where_lang::parse(&message.r#where)
                .map_err(|error| InvalidFilter::new("filter.where", error.to_string()))?;
        }
        Ok(Self {
            statuses,
            deletion: Deletion::from_pb("filter.deletion", message.deletion)?,
            where_expr: Some(message.r#where).filter(|w| !w.is_empty()),
            names: message.names,
            datablob_names: message.datablob_names,
            datablob_group_names: message.datablob_group_names,
            model_template_names: message.model_template_names,
            model_template_group_names: message.model_template_group_names,
            tags: message.tags.into_iter().collect(),
        })
    }
}

/// A status value for a message: its name, or the number when unknown.
fn status_label(value: i32) -> String {
    pb::RunStatus::try_from(value).map_or_else(
        |_| format!("unknown value {value}"),
        |s| s.as_str_name().to_owned(),
    )
}

/// A filter list: at most [`MAX_FILTER_VALUES`] names, each a valid name.
fn values(field: &str, list: &[String]) -> Result<()> {
    if list.len() > MAX_FILTER_VALUES {
        return Err(InvalidFilter::new(
            field,
            format!("must hold at most {MAX_FILTER_VALUES} values, got {}", list.len()),
        ));
    }
    list.iter().enumerate().try_for_each(|(i, value)| {
        name_rule(value).map_err(|rule| InvalidFilter::new(format!("{field}[{i}]"), rule))
    })
}

fn strings<S: Into<String>>(values: impl IntoIterator<Item = S>) -> Vec<String> {
    values.into_iter().map(Into::into).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn messages_round_trip_and_statuses_are_a_set() {
        let filter = ModelFilter::default()
            .names(["a"])
            .statuses([RunStatus::Running, RunStatus::Created, RunStatus::Running])
            .deletion(Deletion::DeletedOnly)
            .where_expr("epochs > 1");
        let back = ModelFilter::from_pb(Some(filter.to_pb())).unwrap();
        assert_eq!(back.statuses, [RunStatus::Created, RunStatus::Running]);
        assert_eq!(back.deletion, Deletion::DeletedOnly);
        assert_eq!(back.where_expr.as_deref(), Some("epochs > 1"));
        assert_eq!(ModelFilter::from_pb(None).unwrap(), ModelFilter::default());
        let grouped = GroupedFilter::default()
            .group_names(["g"])
            .deletion(Deletion::All);
        assert_eq!(
            GroupedFilter::from_pb("filter", Some(grouped.to_pb())).unwrap(),
            grouped
        );
    }

    #[test]
    fn errors_name_the_field() {
        let bad = |message: pb::ModelFilter| ModelFilter::from_pb(Some(message)).unwrap_err().to_string();
        let message = bad(pb::ModelFilter {
            datablob_names: vec!["ok".into(), String::new()],
            ..Default::default()
        });
        assert_eq!(message, "filter.datablob_names[1]: must not be empty");
        let message = bad(pb::ModelFilter {
            statuses: vec![0],
            ..Default::default()
        });
        assert!(
            message.starts_with("filter.statuses[0]: must be a RunStatus"),
            "{message}"
        );
        let message = bad(pb::ModelFilter {
            deletion: 9,
            ..Default::default()
        });
        assert!(
            message.starts_with("filter.deletion: unknown value 9"),
            "{message}"
        );
        let message = bad(pb::ModelFilter {
            r#where: "x".repeat(MAX_WHERE_BYTES + 1),
            ..Default::default()
        });
        assert!(
            message.starts_with("filter.where: must be at most 4096 bytes"),
            "{message}"
        );
        let message = GroupedFilter::from_pb(
            "filter",
            Some(pb::GroupedFilter {
                names: vec!["\u{1}".into()],
                ..Default::default()
            }),
        )
        .unwrap_err()
        .to_string();
        assert!(
            message.starts_with("filter.names[0]: must not contain control"),
            "{message}"
        );
    }

    #[test]
    fn statuses_convert_both_ways() {
        for status in RunStatus::ALL {
            assert_eq!(RunStatus::from_pb(status.to_pb().into()), Some(status));
            assert_eq!(RunStatus::from_column(status.as_column()), Some(status));
            assert_eq!(RunStatus::parse(&status.as_column().to_lowercase()), Some(status));
        }
        assert_eq!(RunStatus::from_pb(0), None);
    }
}
