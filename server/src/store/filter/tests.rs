//! The compiled SQL comes from the fixed grammar only: whatever the
//! expression says, its literals and key paths are bound values.

use mlmeta_proto::where_lang::parse;

use super::compile::{Dialect, Membership, compile};

fn sql(text: &str, dialect: Dialect) -> (String, usize) {
    sql_joined(text, dialect, Membership::Uncorrelated)
}

fn sql_joined(text: &str, dialect: Dialect, membership: Membership) -> (String, usize) {
    let expr = parse(text).unwrap();
    compile(&expr, dialect, membership, 0).unwrap().text_and_binds()
}

#[test]
fn literals_and_paths_are_bound() {
    let hostile = "x'' OR 1=1 --";
    let (text, binds) = sql(
        &format!("params.`a'; DROP TABLE models; --` = '{hostile}' or tags.`t\"` like '%{hostile}'"),
        Dialect::Postgres,
    );
    assert!(
        !text.contains("DROP") && !text.contains("1=1") && !text.contains("t\""),
        "{text}"
    );
    assert_eq!(binds, 6);
}

#[test]
fn structure_decides_the_text() {
    // Same shape, other values: same SQL text (so the statement is the
    // same whatever the values are).
    for dialect in [Dialect::Sqlite, Dialect::Postgres] {
        let a = sql(
            "params.lr < 0.01 and not (name like 'a%' or max(acc) >= 1)",
            dialect,
        );
        let b = sql(
            "params.zz < 7.5 and not (name like 'zz' or max(b) >= -inf)",
            dialect,
        );
        assert_eq!(a, b);
    }
    let (pg, _) = sql("name < 'b'", Dialect::Postgres);
    assert!(pg.contains("COLLATE \"C\""), "{pg}");
    let (lite, _) = sql("name like 'b%'", Dialect::Sqlite);
    assert!(lite.contains("GLOB"), "{lite}");
}

#[test]
fn last_and_count_read_metric_latest() {
    for dialect in [Dialect::Sqlite, Dialect::Postgres] {
        let (text, binds) = sql(
            "last(loss) < 1 and count(loss) >= 3 and exists max(loss)",
            dialect,
        );
        assert_eq!(text.matches("metric_latest").count(), 2, "{text}");
        assert!(
            text.contains("s.last_value") && text.contains("s.value_count"),
            "{text}"
        );
        assert_eq!(text.matches("metric_summaries").count(), 1, "{text}");
        assert_eq!(binds, 5);
    }
}

#[test]
fn correlated_tests_probe_the_model_and_bind_the_same_values() {
    let text = "params.lr < 0.01 and (tags.team = 'a' or template.group = 'cnn') and not max(acc) > 0.5";
    for dialect in [Dialect::Sqlite, Dialect::Postgres] {
        let (open, open_binds) = sql_joined(text, dialect, Membership::Uncorrelated);
        let (probe, probe_binds) = sql_joined(text, dialect, Membership::Correlated);
        assert_eq!(open_binds, probe_binds);
        assert_eq!(open.matches(" IN (SELECT").count(), 4, "{open}");
        assert!(!open.contains("EXISTS"), "{open}");
        // Components stay an uncorrelated IN: there are few of them.
        assert_eq!(probe.matches(" IN (SELECT fc.id").count(), 1, "{probe}");
        assert_eq!(probe.matches("EXISTS (SELECT 1 FROM").count(), 3, "{probe}");
        for probe_of in [
            "v.owner_id = models.id",
            "t.target_id = models.id",
            "s.model_id = models.id",
        ] {
            assert!(probe.contains(probe_of), "{probe}");
        }
    }
}
