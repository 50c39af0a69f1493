//! A hand-written recursive-descent parser of the `where` language: one
//! pass over the characters, every error at a 1-based column.

use super::ast::{
    CmpOp, Expr, Field, FieldKind, JsonSource, LikePart, LikePattern, MetricFn, Number, OrderBy, Predicate,
    TimeValue, Value,
};
use super::time::parse_timestamp;
use super::{MAX_DEPTH, MAX_IN_VALUES, MAX_PREDICATES, WhereError};
use crate::filter::{MAX_WHERE_BYTES, RunStatus};

/// Parses a whole expression.
pub fn parse(text: &str) -> Result<Expr, WhereError> {
    if text.len() > MAX_WHERE_BYTES {
        return Err(WhereError::new(
            1,
            format!("must be at most {MAX_WHERE_BYTES} bytes"),
        ));
    }
    let mut parser = Parser {
        chars: text.chars().collect(),
        pos: 0,
        depth: 0,
        predicates: 0,
        in_values: 0,
    };
    parser.skip_ws();
    if parser.at_end() {
        return Err(parser.error("expected an expression"));
    }
    let expr = parser.or()?;
    parser.skip_ws();
    if !parser.at_end() {
        return Err(parser.error(format!(
            "expected 'and', 'or' or the end, found {}",
            parser.found()
        )));
    }
    Ok(expr)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
    predicates: usize,
    in_values: usize,
}

const FIELDS: &str = "name, class, project, status, created_at, started_at, ended_at, last_heartbeat_at, \
datablob, datablob.group, datablob.<key>, template, template.group, template.<key>, params.<key>, tags.<key>, \
max(m), min(m), last(m), count(m), epochs, current_epoch";

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl Parser {
    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn column(&self) -> usize {
        self.pos + 1
    }

    fn error(&self, message: impl Into<String>) -> WhereError {
        WhereError::new(self.column(), message)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// What is at the cursor, for messages.
    fn found(&self) -> String {
        match self.peek() {
            None => "the end".to_owned(),
            Some(c) if is_ident_start(c) => {
                let word: String = self.chars[self.pos..]
                    .iter()
                    .take_while(|c| is_ident_char(**c))
                    .take(32)
                    .collect();
                format!("'{word}'")
            }
            Some(c) => format!("'{c}'"),
        }
    }

    /// The identifier at the cursor, without consuming it.
    fn peek_word(&self) -> Option<String> {
        let first = self.peek()?;
        if !is_ident_start(first) {
            return None;
        }
        Some(
            self.chars[self.pos..]
                .iter()
                .take_while(|c| is_ident_char(**c))
                .collect(),
        )
    }

    /// Consumes keyword `word` (any case) if it is next.
    fn keyword(&mut self, word: &str) -> bool {
        self.skip_ws();
        match self.peek_word() {
            Some(found) if found.eq_ignore_ascii_case(word) => {
                self.pos += found.chars().count();
                true
            }
            _ => false,
        }
    }

    /// Consumes `symbol` if it is next.
    fn symbol(&mut self, symbol: &str) -> bool {
        self.skip_ws();
        let len = symbol.chars().count();
        let matches = self.chars.len() >= self.pos + len
            && self.chars[self.pos..self.pos + len]
                .iter()
                .copied()
                .eq(symbol.chars());
        if matches {
            self.pos += len;
        }
        matches
    }

    fn expect_symbol(&mut self, symbol: &str, context: &str) -> Result<(), WhereError> {
        if self.symbol(symbol) {
            Ok(())
        } else {
            Err(self.error(format!("expected '{symbol}' {context}, found {}", self.found())))
        }
    }

    fn enter(&mut self) -> Result<(), WhereError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, WhereError> {
        let mut parts = vec![self.and()?];
        while self.keyword("or") {
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Expr, WhereError> {
        let mut parts = vec![self.unary()?];
        while self.keyword("and") {
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Expr, WhereError> {
        self.skip_ws();
        if self.at_end() {
            return Err(self.error("expected a condition, found the end"));
        }
        let start = self.pos;
        if self.keyword("not") {
            self.skip_ws();
            // `not exists f` is the negated test, not the field `exists`.
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.pos = start;
        if self.symbol("(") {
            let open = start + 1;
            self.enter()?;
            let inner = self.or()?;
            self.depth -= 1;
            self.skip_ws();
            if !self.symbol(")") {
                return Err(self.error(format!(
                    "expected ')' to close the '(' at column {open}, found {}",
                    self.found()
                )));
            }
            return Ok(inner);
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, WhereError> {
        self.predicates += 1;
        if self.predicates > MAX_PREDICATES {
            return Err(self.error(format!("more than {MAX_PREDICATES} conditions")));
        }
        if self.keyword("exists") {
            self.skip_ws();
            let column = self.column();
            let field = self.field()?;
            if !field.can_be_missing() {
                return Err(WhereError::new(
                    column,
                    "every model has this field: 'exists' applies to datablob.<key>, template.<key>, params.<key>, \
                     tags.<key>, metric summaries, current_epoch, started_at, ended_at and last_heartbeat_at",
                ));
            }
            return Ok(Expr::Pred(Predicate::Exists { field }));
        }
        let field = self.field()?;
        self.skip_ws();
        let op_column = self.column();
        if self.keyword("like") {
            return self.like(field);
        }
        let after_field = self.pos;
        if self.keyword("not") {
            if self.keyword("in") {
                return self.in_list(field, true);
            }
            self.pos = after_field;
            return Err(self.error("expected 'in' after 'not'"));
        }
        if self.keyword("in") {
            return self.in_list(field, false);
        }
        let op = self.cmp_op().ok_or_else(|| {
            WhereError::new(
                op_column,
                format!(
                    "expected an operator (=, !=, <, <=, >, >=, in, not in, like) after the field, found {}",
                    self.found()
                ),
            )
        })?;
        self.skip_ws();
        let value = self.value(&field, op)?;
        Ok(Expr::Pred(Predicate::Compare { field, op, value }))
    }

    fn cmp_op(&mut self) -> Option<CmpOp> {
        for (symbol, op) in [
            ("!=", CmpOp::Ne),
            ("<>", CmpOp::Ne),
            ("<=", CmpOp::Le),
            (">=", CmpOp::Ge),
            ("=", CmpOp::Eq),
            ("<", CmpOp::Lt),
            (">", CmpOp::Gt),
        ] {
            if self.symbol(symbol) {
                return Some(op);
            }
        }
        None
    }

    fn like(&mut self, field: Field) -> Result<Expr, WhereError> {
        self.skip_ws();
        let column = self.column();
        if !matches!(field.kind(), FieldKind::Text | FieldKind::Json) {
            return Err(WhereError::new(column, "'like' applies to string fields only"));
        }
        if self.peek() != Some('\'') {
            return Err(self.error(format!(
                "expected a quoted pattern after 'like', found {}",
                self.found()
            )));
        }
        let text = self.string()?;
        let mut parts = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            parts.push(match c {
                '%' => LikePart::Many,
                '_' => LikePart::One,
                '\\' => match chars.next() {
                    Some(escaped) => LikePart::Char(escaped),
                    None => {
                        return Err(WhereError::new(
                            column,
                            "the pattern ends with '\\': escape a character ('\\%', '\\_', '\\\\')",
                        ));
                    }
                },
                c => LikePart::Char(c),
            });
        }
        Ok(Expr::Pred(Predicate::Like {
            field,
            pattern: LikePattern(parts),
        }))
    }

    fn in_list(&mut self, field: Field, negated: bool) -> Result<Expr, WhereError> {
        self.expect_symbol("(", "to open the list after 'in'")?;
        let mut values = Vec::new();
        loop {
            self.skip_ws();
            values.push(self.value(&field, CmpOp::Eq)?);
            self.in_values += 1;
            if self.in_values > MAX_IN_VALUES {
                return Err(self.error(format!("more than {MAX_IN_VALUES} values in 'in' lists")));
            }
            if self.symbol(",") {
                continue;
            }
            self.expect_symbol(")", "or ',' in the 'in' list")?;
            break;
        }
        Ok(Expr::Pred(Predicate::In {
            field,
            negated,
            values,
        }))
    }

    fn field(&mut self) -> Result<Field, WhereError> {
        self.skip_ws();
        let column = self.column();
        let Some(word) = self.peek_word() else {
            return Err(self.error(format!("expected a field ({FIELDS}), found {}", self.found())));
        };
        self.pos += word.chars().count();
        let simple = match word.as_str() {
            "name" => Some(Field::Name),
            "class" => Some(Field::Class),
            "project" => Some(Field::Project),
            "status" => Some(Field::Status),
            "created_at" => Some(Field::CreatedAt),
            "started_at" => Some(Field::StartedAt),
            "ended_at" => Some(Field::EndedAt),
            "last_heartbeat_at" => Some(Field::LastHeartbeatAt),
            "epochs" => Some(Field::Epochs),
            "current_epoch" => Some(Field::CurrentEpoch),
            _ => None,
        };
        if let Some(field) = simple {
            return Ok(field);
        }
        let function = match word.as_str() {
            "max" => Some(MetricFn::Max),
            "min" => Some(MetricFn::Min),
            "last" => Some(MetricFn::Last),
            "count" => Some(MetricFn::Count),
            _ => None,
        };
        if let Some(function) = function {
            self.expect_symbol(
                "(",
                &format!("after '{word}' (a metric summary such as {word}(loss))"),
            )?;
            self.skip_ws();
            let metric = self.name_part("a metric name")?;
            self.expect_symbol(")", "after the metric name")?;
            return Ok(Field::Metric { function, metric });
        }
        let source = match word.as_str() {
            "datablob" => Some(JsonSource::Datablob),
            "template" => Some(JsonSource::Template),
            "params" => None,
            "tags" => None,
            _ => {
                return Err(WhereError::new(
                    column,
                    format!("unknown field '{word}' (fields: {FIELDS})"),
                ));
            }
        };
        if self.peek() != Some('.') {
            return match (word.as_str(), source) {
                ("datablob", _) => Ok(Field::Datablob),
                ("template", _) => Ok(Field::Template),
                _ => Err(self.error(format!("expected '.' and a key after '{word}'"))),
            };
        }
        if word == "tags" {
            self.pos += 1;
            let key = self.name_part("a tag key")?;
            return Ok(Field::Tag(key));
        }
        // `datablob.group` is the group; a hyperparameter named "group"
        // is written `datablob.`group``.
        if source.is_some() && self.peek_at(1).is_some_and(|c| c != '`') {
            let save = self.pos;
            self.pos += 1;
            if self.peek_word().as_deref() == Some("group") {
                self.pos += "group".len();
                if self.peek() != Some('.') {
                    return Ok(match source {
                        Some(JsonSource::Datablob) => Field::DatablobGroup,
                        _ => Field::TemplateGroup,
                    });
                }
            }
            self.pos = save;
        }
        let mut path = Vec::new();
        while self.peek() == Some('.') {
            self.pos += 1;
            path.push(self.key_segment()?);
        }
        Ok(Field::Json {
            source: source.unwrap_or(JsonSource::Params),
            path,
        })
    }

    /// One key of a JSON path: letters, digits and `_`, or backquoted.
    fn key_segment(&mut self) -> Result<String, WhereError> {
        if self.peek() == Some('`') {
            return self.backquoted();
        }
        let segment: String = self.chars[self.pos..]
            .iter()
            .take_while(|c| is_ident_char(**c))
            .collect();
        if segment.is_empty() {
            return Err(self.error(format!(
                "expected a key after '.' (letters, digits, '_', or `quoted`), found {}",
                self.found()
            )));
        }
        self.pos += segment.chars().count();
        Ok(segment)
    }

    /// A metric name or tag key: an identifier, or backquoted.
    fn name_part(&mut self, what: &str) -> Result<String, WhereError> {
        if self.peek() == Some('`') {
            return self.backquoted();
        }
        let name: String = self.chars[self.pos..]
            .iter()
            .take_while(|c| is_ident_char(**c) || **c == '.' || **c == '-' || **c == '/')
            .collect();
        if name.is_empty() {
            return Err(self.error(format!("expected {what}, found {}", self.found())));
        }
        self.pos += name.chars().count();
        Ok(name)
    }

    /// `` `text` ``, with ``` `` ``` for a backquote.
    fn backquoted(&mut self) -> Result<String, WhereError> {
        let open = self.column();
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.error(format!("expected '`' to close the '`' at column {open}")));
                }
                Some('`') if self.peek_at(1) == Some('`') => {
                    out.push('`');
                    self.pos += 2;
                }
                Some('`') => {
                    self.pos += 1;
                    break;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        if out.is_empty() {
            return Err(WhereError::new(open, "a quoted key cannot be empty"));
        }
        Ok(out)
    }

    /// `'text'`, with `''` for a quote.
    fn string(&mut self) -> Result<String, WhereError> {
        let open = self.column();
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.error(format!("expected ' to close the string at column {open}")));
                }
                Some('\'') if self.peek_at(1) == Some('\'') => {
                    out.push('\'');
                    self.pos += 2;
                }
                Some('\'') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// A literal after `op`, checked against the field's kind.
    fn value(&mut self, field: &Field, op: CmpOp) -> Result<Value, WhereError> {
        let column = self.column();
        let ordering = !matches!(op, CmpOp::Eq | CmpOp::Ne);
        if self.at_end() {
            return Err(self.error(format!("expected a value after '{}'", op.as_str())));
        }
        let kind = field.kind();
        let value = match self.peek() {
            Some('\'') => {
                let text = self.string()?;
                match kind {
                    FieldKind::Text | FieldKind::Json => Value::Str(text),
                    FieldKind::Status => {
                        let status = RunStatus::parse(&text).ok_or_else(|| {
                            WhereError::new(
                                column,
                                format!(
                                    "unknown status {text:?}: use created, running, finished, failed, killed or crashed"
                                ),
                            )
                        })?;
                        Value::Status(status.as_column())
                    }
                    FieldKind::Time => Value::Time(TimeValue::At(
                        parse_timestamp(&text).map_err(|rule| WhereError::new(column, rule))?,
                    )),
                    FieldKind::Number => {
                        return Err(WhereError::new(
                            column,
                            "expected a number: this field holds numbers",
                        ));
                    }
                }
            }
            _ if self.keyword("true") || self.keyword("false") => {
                let value = self.chars[column - 1] == 't' || self.chars[column - 1] == 'T';
                if kind != FieldKind::Json {
                    return Err(WhereError::new(
                        column,
                        "booleans compare only with JSON values (datablob.<key>, template.<key>, params.<key>)",
                    ));
                }
                if ordering {
                    return Err(WhereError::new(column, "booleans compare only with '=' and '!='"));
                }
                Value::Bool(value)
            }
            _ if self.peek_word().is_some_and(|w| w.eq_ignore_ascii_case("now")) => {
                if kind != FieldKind::Time {
                    return Err(WhereError::new(column, "now() compares only with time fields"));
                }
                Value::Time(self.now()?)
            }
            _ => {
                let number = self.number(&format!("a value after '{}'", op.as_str()))?;
                match kind {
                    FieldKind::Number | FieldKind::Json => Value::Number(number),
                    FieldKind::Time => {
                        return Err(WhereError::new(
                            column,
                            "expected a timestamp ('2026-11-30', '2026-11-30T12:00:00Z') or now() - 7d",
                        ));
                    }
                    FieldKind::Text | FieldKind::Status => {
                        return Err(WhereError::new(
                            column,
                            "expected a quoted string: this field holds strings",
                        ));
                    }
                }
            }
        };
        if ordering && kind == FieldKind::Status {
            return Err(WhereError::new(
                column,
                "statuses compare only with '=', '!=' and 'in'",
            ));
        }
        Ok(value)
    }

    /// `now()`, optionally `+`/`-` a duration such as `7d`.
    fn now(&mut self) -> Result<TimeValue, WhereError> {
        self.pos += 3;
        self.expect_symbol("(", "after 'now'")?;
        self.expect_symbol(")", "after 'now('")?;
        let sign = if self.symbol("-") {
            -1
        } else if self.symbol("+") {
            1
        } else {
            return Ok(TimeValue::Now(0));
        };
        self.skip_ws();
        let column = self.column();
        let digits: String = self.chars[self.pos..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        self.pos += digits.len();
        let unit: String = self.chars[self.pos..]
            .iter()
            .take_while(|c| is_ident_char(**c))
            .collect();
        self.pos += unit.chars().count();
        let micros_per_unit: i64 = match unit.as_str() {
            "s" => 1_000_000,
            "m" => 60_000_000,
            "h" => 3_600_000_000,
            "d" => 86_400_000_000,
            "w" => 604_800_000_000,
            _ => 0,
        };
        let count: Option<i64> = digits.parse().ok();
        match count {
            Some(count) if micros_per_unit > 0 => count
                .checked_mul(micros_per_unit)
                .map(|micros| TimeValue::Now(sign * micros))
                .ok_or_else(|| WhereError::new(column, "duration too long")),
            _ => Err(WhereError::new(
                column,
                "expected a duration such as 30s, 15m, 12h, 7d or 2w",
            )),
        }
    }

    /// An integer, a float, `inf` or `-inf`.
    fn number(&mut self, what: &str) -> Result<Number, WhereError> {
        let start = self.pos;
        let column = self.column();
        let negative = self.peek() == Some('-');
        if negative || self.peek() == Some('+') {
            self.pos += 1;
        }
        if self.peek_word().is_some_and(|w| w.eq_ignore_ascii_case("inf")) {
            self.pos += 3;
            let float = if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
            return Ok(Number { float, int: None });
        }
        let digits_start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let mut integral = true;
        if self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            integral = false;
            self.pos += 1;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
        }
        if self.pos == digits_start {
            self.pos = start;
            return Err(self.error(format!("expected {what}, found {}", self.found())));
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let save = self.pos;
            self.pos += 1;
            if matches!(self.peek(), Some('+' | '-')) {
                self.pos += 1;
            }
            let exponent_start = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
            if self.pos == exponent_start {
                self.pos = save;
            } else {
                integral = false;
            }
        }
        if self.peek().is_some_and(is_ident_char) {
            return Err(self.error(format!("expected a number, found {}", self.found())));
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        let float: f64 = text
            .parse()
            .map_err(|_| WhereError::new(column, format!("expected a number, found '{text}'")))?;
        let int = if integral { text.parse::<i64>().ok() } else { None };
        Ok(Number { float, int })
    }
}

/// Parses an `order_by`: one field and an optional `asc` or `desc`.
pub fn parse_order_by(text: &str) -> Result<OrderBy, WhereError> {
    let mut parser = Parser::over(text)?;
    let column = parser.column_after_ws();
    let field = parser.field()?;
    if !field.is_sortable() {
        return Err(WhereError::new(
            column,
            format!("cannot sort by this field (sortable: {SORTABLE})"),
        ));
    }
    let descending = if parser.keyword("desc") {
        true
    } else {
        parser.keyword("asc");
        false
    };
    parser.skip_ws();
    if !parser.at_end() {
        return Err(parser.error(format!(
            "expected 'asc', 'desc' or the end, found {}",
            parser.found()
        )));
    }
    Ok(OrderBy { field, descending })
}

/// Parses one entry of `columns`: a summary field.
pub fn parse_column(text: &str) -> Result<Field, WhereError> {
    let mut parser = Parser::over(text)?;
    let column = parser.column_after_ws();
    let field = parser.field()?;
    if !field.is_summary() {
        return Err(WhereError::new(
            column,
            format!("not a summary (columns: {SUMMARIES})"),
        ));
    }
    parser.skip_ws();
    if !parser.at_end() {
        return Err(parser.error(format!("expected the end, found {}", parser.found())));
    }
    Ok(field)
}

/// The fields `order_by` accepts, for messages.
const SORTABLE: &str = "name, class, status, created_at, started_at, ended_at, last_heartbeat_at, \
epochs, current_epoch, max(m), min(m), last(m), count(m)";

/// The fields `columns` accepts, for messages.
const SUMMARIES: &str = "max(m), min(m), last(m), count(m), epochs, current_epoch";

impl Parser {
    /// A parser over `text` (at most [`MAX_WHERE_BYTES`] bytes, not blank).
    fn over(text: &str) -> Result<Self, WhereError> {
        if text.len() > MAX_WHERE_BYTES {
            return Err(WhereError::new(
                1,
                format!("must be at most {MAX_WHERE_BYTES} bytes"),
            ));
        }
        let mut parser = Parser {
            chars: text.chars().collect(),
            pos: 0,
            depth: 0,
            predicates: 0,
            in_values: 0,
        };
        parser.skip_ws();
        if parser.at_end() {
            return Err(parser.error("expected a field"));
        }
        Ok(parser)
    }

    fn column_after_ws(&mut self) -> usize {
        self.skip_ws();
        self.column()
    }
}
