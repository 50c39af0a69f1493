//! The parsed form of a `where` expression: what the server compiles to
//! SQL and what an in-memory evaluator walks.

/// A whole expression: predicates combined with `and`, `or`, `not`.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// True when any part is.
    Or(Vec<Expr>),
    /// True when every part is.
    And(Vec<Expr>),
    /// The complement (two-valued: `not p` matches every model `p` does not).
    Not(Box<Expr>),
    /// One test of one field.
    Pred(Predicate),
}

/// One test of one field.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// `field op value`: matches when the field has a value of the
    /// literal's type and the comparison holds (missing, null and NaN never
    /// match).
    Compare {
        /// The field.
        field: Field,
        /// The operator.
        op: CmpOp,
        /// The literal.
        value: Value,
    },
    /// `field in (a, b)`: any `=`; `field not in (a, b)`: every `!=`
    /// (so a missing field matches neither).
    In {
        /// The field.
        field: Field,
        /// `not in`.
        negated: bool,
        /// The literals (at least one).
        values: Vec<Value>,
    },
    /// `field like 'pattern'`: a string value matching the pattern.
    Like {
        /// The field.
        field: Field,
        /// The pattern.
        pattern: LikePattern,
    },
    /// `exists field`: the field is present (a JSON null counts).
    Exists {
        /// The field.
        field: Field,
    },
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// Whether `ordering` (of the field's value against the literal)
    /// satisfies the operator.
    pub fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Self::Eq => ordering == Equal,
            Self::Ne => ordering != Equal,
            Self::Lt => ordering == Less,
            Self::Le => ordering != Greater,
            Self::Gt => ordering == Greater,
            Self::Ge => ordering != Less,
        }
    }

    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// Which document a JSON key path reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonSource {
    /// The datablob's hyperparameters.
    Datablob,
    /// The model template's hyperparameters.
    Template,
    /// The model's params.
    Params,
}

/// Per-metric summary functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricFn {
    /// Highest non-NaN value.
    Max,
    /// Lowest non-NaN value.
    Min,
    /// Value at the highest epoch that has the metric.
    Last,
    /// Number of epochs that have the metric.
    Count,
}

/// A field of a model that a predicate tests.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// The model's name.
    Name,
    /// The model's class name.
    Class,
    /// The project's name.
    Project,
    /// The run status.
    Status,
    /// When the model was put.
    CreatedAt,
    /// When its run started (missing before).
    StartedAt,
    /// When its run ended (missing before).
    EndedAt,
    /// Its last heartbeat (missing before the first).
    LastHeartbeatAt,
    /// The datablob's name.
    Datablob,
    /// The datablob's group.
    DatablobGroup,
    /// The template's name.
    Template,
    /// The template's group.
    TemplateGroup,
    /// A value inside a JSON document, by key path.
    Json {
        /// The document.
        source: JsonSource,
        /// Object keys (array elements by their index written as a key).
        path: Vec<String>,
    },
    /// A tag's value.
    Tag(String),
    /// A metric summary.
    Metric {
        /// The function.
        function: MetricFn,
        /// The metric's name.
        metric: String,
    },
    /// Number of epochs.
    Epochs,
    /// Highest epoch number (missing without epochs).
    CurrentEpoch,
}

/// A sort order of listed models: by one field, ascending unless
/// `descending`; ties by name, missing values last either way.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderBy {
    /// The field sorted by.
    pub field: Field,
    /// `desc`.
    pub descending: bool,
}

/// What kind of values a field holds, which decides the literals and
/// operators it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Strings.
    Text,
    /// A run status (`=`, `!=`, `in` only).
    Status,
    /// Timestamps (microseconds since the Unix epoch).
    Time,
    /// Numbers.
    Number,
    /// Any JSON value.
    Json,
}

impl Field {
    /// The kind of values it holds.
    pub fn kind(&self) -> FieldKind {
        match self {
            Self::Name
            | Self::Class
            | Self::Project
            | Self::Datablob
            | Self::DatablobGroup
            | Self::Template
            | Self::TemplateGroup
            | Self::Tag(_) => FieldKind::Text,
            Self::Status => FieldKind::Status,
            Self::CreatedAt | Self::StartedAt | Self::EndedAt | Self::LastHeartbeatAt => FieldKind::Time,
            Self::Metric { .. } | Self::Epochs | Self::CurrentEpoch => FieldKind::Number,
            Self::Json { .. } => FieldKind::Json,
        }
    }

    /// Whether `order_by` accepts it: a model column or a metric summary
    /// (one value per model of one type).
    pub fn is_sortable(&self) -> bool {
        matches!(
            self,
            Self::Name
                | Self::Class
                | Self::Status
                | Self::CreatedAt
                | Self::StartedAt
                | Self::EndedAt
                | Self::LastHeartbeatAt
                | Self::Epochs
                | Self::CurrentEpoch
                | Self::Metric { .. }
        )
    }

    /// Whether `columns` accepts it: a metric summary, `epochs` or
    /// `current_epoch`.
    pub fn is_summary(&self) -> bool {
        matches!(self, Self::Epochs | Self::CurrentEpoch | Self::Metric { .. })
    }

    /// Whether a model can lack it (so that `exists` means something).
    pub fn can_be_missing(&self) -> bool {
        matches!(
            self,
            Self::StartedAt
                | Self::EndedAt
                | Self::LastHeartbeatAt
                | Self::Json { .. }
                | Self::Tag(_)
                | Self::Metric { .. }
                | Self::CurrentEpoch
        )
    }
}

/// A number literal: its double value, and its exact value when it is
/// written as an integer that fits in 64 bits (so that integers beyond
/// 2^53 compare exactly).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number {
    /// The value as a double (`inf`, `-inf` allowed; never NaN).
    pub float: f64,
    /// The exact value of an integer literal.
    pub int: Option<i64>,
}

impl Number {
    /// Compares two numbers: exactly when both are 64-bit integers,
    /// otherwise as doubles (`None` when either is NaN).
    pub fn compare(&self, other: &Number) -> Option<std::cmp::Ordering> {
        match (self.int, other.int) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => self.float.partial_cmp(&other.float),
        }
    }
}

/// A point in time, absolute or relative to when the query runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeValue {
    /// Microseconds since the Unix epoch.
    At(i64),
    /// `now()` plus this many microseconds (negative for `now() - 7d`).
    Now(i64),
}

impl TimeValue {
    /// The microseconds since the Unix epoch, given the current time.
    pub fn resolve(self, now_micros: i64) -> i64 {
        match self {
            Self::At(at) => at,
            Self::Now(offset) => now_micros.saturating_add(offset),
        }
    }
}

/// A literal, already checked against the field's kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number.
    Number(Number),
    /// A string.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
    /// A time (for time fields).
    Time(TimeValue),
    /// A run status, as stored (`RUNNING`).
    Status(&'static str),
}

/// One element of a `like` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LikePart {
    /// This character.
    Char(char),
    /// `_`: any one character.
    One,
    /// `%`: any run of characters.
    Many,
}

/// A parsed `like` pattern (escapes resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikePattern(pub Vec<LikePart>);

impl LikePattern {
    /// Whether `text` matches the pattern (by characters, case-sensitive).
    pub fn matches(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        let parts = &self.0;
        // Classic wildcard matching with one backtrack point per `%`.
        let (mut p, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < chars.len() {
            match parts.get(p) {
                Some(LikePart::Char(c)) if *c == chars[t] => {
                    p += 1;
                    t += 1;
                }
                Some(LikePart::One) => {
                    p += 1;
                    t += 1;
                }
                Some(LikePart::Many) => {
                    star = Some((p, t));
                    p += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        p = sp + 1;
                        t = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        parts[p..].iter().all(|part| *part == LikePart::Many)
    }

    /// The pattern for SQL `LIKE ... ESCAPE '\'` (PostgreSQL).
    pub fn to_sql_like(&self) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                LikePart::Char(c @ ('%' | '_' | '\\')) => {
                    out.push('\\');
                    out.push(*c);
                }
                LikePart::Char(c) => out.push(*c),
                LikePart::One => out.push('_'),
                LikePart::Many => out.push('%'),
            }
        }
        out
    }

    /// The pattern for SQLite's case-sensitive `GLOB`.
    pub fn to_glob(&self) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                LikePart::Char('*') => out.push_str("[*]"),
                LikePart::Char('?') => out.push_str("[?]"),
                LikePart::Char('[') => out.push_str("[[]"),
                LikePart::Char(c) => out.push(*c),
                LikePart::One => out.push('?'),
                LikePart::Many => out.push('*'),
            }
        }
        out
    }
}
