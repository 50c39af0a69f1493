//! Parser tests: the grammar, the typed literals, positioned errors, the
//! limits, and arbitrary input (never a panic).

use proptest::prelude::*;

use super::*;

fn pred(text: &str) -> Predicate {
    match parse(text) {
        Ok(Expr::Pred(pred)) => pred,
        other => panic!("{text}: {other:?}"),
    }
}

fn error(text: &str) -> String {
    match parse(text) {
        Err(error) => error.to_string(),
        Ok(expr) => panic!("{text} parsed as {expr:?}"),
    }
}

fn json(source: JsonSource, path: &[&str]) -> Field {
    Field::Json {
        source,
        path: path.iter().map(|s| (*s).to_owned()).collect(),
    }
}

#[test]
fn the_question_of_the_issue_parses() {
    let expr = parse(
        "params.lr < 0.01 and datablob.group like 'mnist%' and (exists tags.baseline or template.group = 'resnet') \
         and max(val_accuracy) > 0.9 and status != 'running'",
    )
    .unwrap();
    let Expr::And(parts) = expr else { panic!() };
    assert_eq!(parts.len(), 5);
    assert!(matches!(&parts[2], Expr::Or(or) if or.len() == 2));
}

#[test]
fn precedence_not_and_or() {
    let expr = parse("epochs = 1 or epochs = 2 and not epochs = 3").unwrap();
    let Expr::Or(parts) = expr else { panic!() };
    let Expr::And(and) = &parts[1] else { panic!() };
    assert!(matches!(and[1], Expr::Not(_)));
    assert!(parse("NOT (epochs = 1 OR epochs = 2) AND epochs > 0").is_ok());
}

#[test]
fn fields() {
    let cases: Vec<(&str, Field)> = vec![
        ("name = 'a'", Field::Name),
        ("class = 'a'", Field::Class),
        ("project = 'a'", Field::Project),
        ("datablob = 'a'", Field::Datablob),
        ("datablob.group = 'a'", Field::DatablobGroup),
        ("template = 'a'", Field::Template),
        ("template.group = 'a'", Field::TemplateGroup),
        ("datablob.`group` = 'a'", json(JsonSource::Datablob, &["group"])),
        (
            "datablob.group.x = 'a'",
            json(JsonSource::Datablob, &["group", "x"]),
        ),
        ("template.opt.lr = 1", json(JsonSource::Template, &["opt", "lr"])),
        (
            "params.layers.0.units = 1",
            json(JsonSource::Params, &["layers", "0", "units"]),
        ),
        (
            "params.`a.b`.`c``d` = 1",
            json(JsonSource::Params, &["a.b", "c`d"]),
        ),
        ("tags.team = 'a'", Field::Tag("team".into())),
        ("tags.`odd key` = 'a'", Field::Tag("odd key".into())),
        (
            "max(val_accuracy) > 1",
            Field::Metric {
                function: MetricFn::Max,
                metric: "val_accuracy".into(),
            },
        ),
        (
            "count( `loss/train` ) > 1",
            Field::Metric {
                function: MetricFn::Count,
                metric: "loss/train".into(),
            },
        ),
        ("epochs > 1", Field::Epochs),
        ("current_epoch > 1", Field::CurrentEpoch),
    ];
    for (text, expected) in cases {
        let field = match pred(text) {
            Predicate::Compare { field, .. } => field,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(field, expected, "{text}");
    }
}

#[test]
fn literals() {
    let value = |text: &str| match pred(text) {
        Predicate::Compare { value, .. } => value,
        other => panic!("{other:?}"),
    };
    assert_eq!(value("params.s = 'it''s'"), Value::Str("it's".into()));
    assert_eq!(
        value("params.n = 9007199254740993"),
        Value::Number(Number {
            float: 9_007_199_254_740_992.0,
            int: Some(9_007_199_254_740_993)
        })
    );
    assert_eq!(
        value("params.n = -1.5e3"),
        Value::Number(Number {
            float: -1500.0,
            int: None
        })
    );
    assert_eq!(
        value("max(m) < -inf"),
        Value::Number(Number {
            float: f64::NEG_INFINITY,
            int: None
        })
    );
    assert_eq!(value("params.b = TRUE"), Value::Bool(true));
    assert_eq!(value("status = 'Running'"), Value::Status("RUNNING"));
    assert_eq!(
        value("created_at >= '1970-01-02'"),
        Value::Time(TimeValue::At(86_400_000_000))
    );
    assert_eq!(
        value("ended_at > now() - 7d"),
        Value::Time(TimeValue::Now(-604_800_000_000))
    );
    assert_eq!(value("ended_at > now()"), Value::Time(TimeValue::Now(0)));
}

#[test]
fn in_like_exists() {
    assert_eq!(
        pred("params.x not in (1, 'a', true)"),
        Predicate::In {
            field: json(JsonSource::Params, &["x"]),
            negated: true,
            values: vec![
                Value::Number(Number {
                    float: 1.0,
                    int: Some(1)
                }),
                Value::Str("a".into()),
                Value::Bool(true)
            ],
        }
    );
    let Predicate::Like { pattern, .. } = pred(r"name like 'a\%b_c%'") else {
        panic!()
    };
    assert_eq!(
        pattern.0,
        vec![
            LikePart::Char('a'),
            LikePart::Char('%'),
            LikePart::Char('b'),
            LikePart::One,
            LikePart::Char('c'),
            LikePart::Many
        ]
    );
    assert!(pattern.matches("a%bxc") && pattern.matches("a%bxcdef") && !pattern.matches("aXbxc"));
    assert_eq!(pattern.to_sql_like(), r"a\%b_c%");
    assert_eq!(pattern.to_glob(), "a%b?c*");
    assert!(matches!(parse("not exists params.lr"), Ok(Expr::Not(_))));
}

#[test]
fn like_matching() {
    let pattern = |text: &str| match pred(&format!("name like '{text}'")) {
        Predicate::Like { pattern, .. } => pattern,
        other => panic!("{other:?}"),
    };
    assert!(pattern("%").matches(""));
    assert!(pattern("%a%a").matches("banana"));
    assert!(!pattern("%a%b").matches("banana"));
    assert!(pattern("_é_").matches("xéy"));
    assert!(!pattern("abc").matches("ABC"));
    assert_eq!(pattern("[*?]").to_glob(), "[[][*][?]]");
}

#[test]
fn errors_point_at_the_place() {
    assert_eq!(
        error("epochs = 1 and max(loss) <"),
        "column 27: expected a value after '<'"
    );
    assert_eq!(
        error("epochs = 1 and"),
        "column 15: expected a condition, found the end"
    );
    assert!(error("colour = 'red'").starts_with("column 1: unknown field 'colour'"));
    assert!(error("(epochs = 1").starts_with("column 12: expected ')' to close the '(' at column 1"));
    assert!(error("name = 'abc").starts_with("column 12: expected ' to close the string at column 8"));
    assert!(error("epochs = 'a'").starts_with("column 10: expected a number"));
    assert!(error("name = 1").starts_with("column 8: expected a quoted string"));
    assert!(error("status < 'running'").starts_with("column 10: statuses compare only"));
    assert!(error("status = 'sleeping'").starts_with("column 10: unknown status"));
    assert!(error("params.b < true").starts_with("column 12: booleans compare only with '='"));
    assert!(error("created_at > '2026-02-30'").starts_with("column 14: expected a timestamp"));
    assert!(error("created_at > now() - 7 days").starts_with("column 22: expected a duration"));
    assert!(error("exists name").starts_with("column 8: every model has this field"));
    assert!(error("epochs like 'a'").starts_with("column 13: 'like' applies to string fields"));
    assert!(error("epochs = 1 epochs = 2").starts_with("column 12: expected 'and', 'or' or the end"));
    assert!(error("params = 1").starts_with("column 7: expected '.' and a key after 'params'"));
    assert!(error("params.`` = 1").starts_with("column 8: a quoted key cannot be empty"));
    assert!(error("epochs = 12abc").starts_with("column 12: expected a number"));
    assert!(error("").starts_with("column 1: expected an expression"));
    assert!(error("name like 'a\\'").contains("ends with '\\'"));
}

#[test]
fn limits() {
    let deep = format!(
        "{}epochs = 1{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert!(error(&deep).contains("nesting deeper than 32"));
    let nots = format!("{}epochs = 1", "not ".repeat(MAX_DEPTH + 1));
    assert!(error(&nots).contains("nesting deeper than 32"));
    assert!(
        parse(&format!(
            "{}epochs = 1{}",
            "(".repeat(MAX_DEPTH),
            ")".repeat(MAX_DEPTH)
        ))
        .is_ok()
    );
    let many = vec!["epochs = 1"; MAX_PREDICATES + 1].join(" or ");
    assert!(error(&many).contains("more than 64 conditions"));
    assert!(parse(&vec!["epochs = 1"; MAX_PREDICATES].join(" or ")).is_ok());
    let values = vec!["1"; MAX_IN_VALUES + 1].join(",");
    assert!(error(&format!("epochs in ({values})")).contains("more than 1000 values"));
    assert!(error(&format!("name = '{}'", "x".repeat(4_096))).contains("at most 4096 bytes"));
}

proptest! {
    /// Arbitrary text never panics and either parses or names a column
    /// inside the text (or just past its end).
    #[test]
    fn arbitrary_text_parses_or_fails_at_a_column(text in "\\PC{0,80}") {
        match parse(&text) {
            Ok(_) => {}
            Err(error) => prop_assert!(error.column >= 1 && error.column <= text.chars().count() + 1),
        }
    }

    /// Text made of the language's own pieces (more likely to go deep).
    #[test]
    fn token_soup_parses_or_fails_at_a_column(
        tokens in proptest::collection::vec(
            prop_oneof![
                Just("("), Just(")"), Just("and"), Just("or"), Just("not"), Just("exists"), Just("in"),
                Just("like"), Just("="), Just("<"), Just(">="), Just("!="), Just(","), Just("'a'"), Just("'"),
                Just("1"), Just("-inf"), Just("1.5e3"), Just("true"), Just("params.lr"), Just("tags.t"),
                Just("max(m)"), Just("max("), Just("status"), Just("'running'"), Just("created_at"),
                Just("now()"), Just("- 7d"), Just("`k`"), Just("`"), Just("."), Just("datablob.group"),
            ],
            0..40,
        )
    ) {
        let text = tokens.join(" ");
        if let Err(error) = parse(&text) {
            prop_assert!(error.column >= 1 && error.column <= text.chars().count() + 1);
        }
    }
}

#[test]
fn order_by_parses_a_field_and_a_direction() {
    let metric = |function, metric: &str| Field::Metric {
        function,
        metric: metric.to_owned(),
    };
    assert_eq!(
        parse_order_by("  max(val_accuracy)   DESC ").unwrap(),
        OrderBy {
            field: metric(MetricFn::Max, "val_accuracy"),
            descending: true
        }
    );
    assert_eq!(
        parse_order_by("created_at asc").unwrap(),
        OrderBy {
            field: Field::CreatedAt,
            descending: false
        }
    );
    assert!(!parse_order_by("count(`a b`)").unwrap().descending);
    let error = |text: &str| parse_order_by(text).unwrap_err().to_string();
    assert_eq!(error(""), "column 1: expected a field");
    assert!(error("params.lr").starts_with("column 1: cannot sort by this field"));
    assert!(error("tags.team desc").starts_with("column 1: cannot sort by this field"));
    assert_eq!(
        error("epochs up"),
        "column 8: expected 'asc', 'desc' or the end, found 'up'"
    );
    assert!(error("bogus").starts_with("column 1: unknown field 'bogus'"));
    assert!(
        error("max(").contains("expected a metric name"),
        "{}",
        error("max(")
    );
}

#[test]
fn columns_are_summaries() {
    assert_eq!(parse_column(" epochs ").unwrap(), Field::Epochs);
    assert_eq!(
        parse_column("last(loss)").unwrap(),
        Field::Metric {
            function: MetricFn::Last,
            metric: "loss".to_owned()
        }
    );
    let error = parse_column("  name").unwrap_err().to_string();
    assert!(error.starts_with("column 3: not a summary"), "{error}");
    assert!(parse_column("epochs desc").is_err());
    assert_eq!(
        split_columns(" last(loss), max(`a,b`) ,,epochs"),
        ["last(loss)", "max(`a,b`)", "epochs"]
    );
    assert!(split_columns(" , ").is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn order_by_and_columns_never_panic(text in ".{0,64}") {
        let _ = parse_order_by(&text);
        let _ = parse_column(&text);
        let _ = split_columns(&text);
    }
}
