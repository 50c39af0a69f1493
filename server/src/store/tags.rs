//! Tags (the `tags` table) and descriptions of models, datablobs and
//! templates: the mutable metadata beside the immutable records.

use std::collections::HashMap;

use diesel::prelude::*;

use super::components;
use super::records::{RecordKind, TagUpdate, Tags};
use super::{MAX_BINDS_PER_LIST, on_backend};
use crate::db::DbConnection;
use crate::db::schema::{components as c, models as m, tags};
use crate::error::{Error, Result};
use crate::security::ProjectScope;
use crate::validate::{MAX_TAGS, SYSTEM_TAG_PREFIX};

#[derive(Insertable)]
#[diesel(table_name = tags)]
struct NewTagRow<'a> {
    project_id: i64,
    target_kind: &'a str,
    target_id: i64,
    key: &'a str,
    value: &'a str,
}

/// Who changes tags: requests may only touch keys outside
/// [`SYSTEM_TAG_PREFIX`], the server only keys inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    User,
    System,
}

/// The id of the record of `kind` named `name` in project `project_id`;
/// NOT_FOUND naming it when there is none.
pub(super) fn target_id(
    conn: &mut DbConnection,
    project_id: i64,
    kind: RecordKind,
    name: &str,
) -> Result<i64> {
    let found = match kind {
        RecordKind::Model => m::table
            .filter(m::project_id.eq(project_id))
            .filter(m::name.eq(name))
            .select((m::id, m::deleted_at))
            .first::<(i64, Option<i64>)>(conn)
            .optional()?,
        RecordKind::Component(kind) => {
            components::find(conn, project_id, kind, name)?.map(|row| (row.id, row.deleted_at))
        }
    };
    match found {
        None => Err(Error::NotFound(format!(
            "{} {name:?} does not exist (target.name)",
            kind.label()
        ))),
        // A deleted record is frozen until restored.
        Some((_, Some(_))) => Err(super::deletion::is_deleted("target.name", kind.label(), name)),
        Some((id, None)) => Ok(id),
    }
}

/// Applies `update` to the tags of one record, all or nothing (the caller
/// runs it in a write transaction), and returns its tags afterwards.
pub(super) fn update(
    conn: &mut DbConnection,
    project_id: i64,
    kind: RecordKind,
    target_id: i64,
    update: &TagUpdate,
    origin: Origin,
) -> Result<Tags> {
    // The service validated the request; this keeps the store's own
    // promise to every caller, including the server's own code.
    for key in update.set.keys().chain(&update.unset) {
        let system = key.starts_with(SYSTEM_TAG_PREFIX);
        if system != (origin == Origin::System) {
            return Err(Error::invalid(
                "tags",
                format!(
                    "key {key:?}: keys starting with {SYSTEM_TAG_PREFIX:?} are {}",
                    if system {
                        "reserved for the server"
                    } else {
                        "the only ones the server sets"
                    }
                ),
            ));
        }
    }
    for chunk in update.unset.chunks(MAX_BINDS_PER_LIST) {
        diesel::delete(
            tags::table
                .filter(tags::target_kind.eq(kind.as_column()))
                .filter(tags::target_id.eq(target_id))
                .filter(tags::key.eq_any(chunk)),
        )
        .execute(conn)?;
    }
    for (key, value) in &update.set {
        let row = NewTagRow {
            project_id,
            target_kind: kind.as_column(),
            target_id,
            key,
            value,
        };
        on_backend!(conn, |c| diesel::insert_into(tags::table)
            .values(&row)
            .on_conflict((tags::target_kind, tags::target_id, tags::key))
            .do_update()
            .set(tags::value.eq(value))
            .execute(c))?;
    }
    let tags = load(conn, &[kind], &[target_id])?
        .remove(&target_id)
        .unwrap_or_default();
    if tags.len() > MAX_TAGS {
        return Err(Error::invalid(
            "set",
            format!(
                "a {} holds at most {MAX_TAGS} tags; this update would leave {}",
                kind.label(),
                tags.len()
            ),
        ));
    }
    Ok(tags)
}

/// The tags of records of one of `kinds` by id (records without tags are
/// absent). Model ids and component ids are separate sequences, so `kinds`
/// must not mix models with components.
pub(super) fn load(conn: &mut DbConnection, kinds: &[RecordKind], ids: &[i64]) -> Result<HashMap<i64, Tags>> {
    let kinds: Vec<&str> = kinds.iter().map(|kind| kind.as_column()).collect();
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut found: HashMap<i64, Tags> = HashMap::new();
    for chunk in ids.chunks(MAX_BINDS_PER_LIST) {
        let rows: Vec<(i64, String, String)> = tags::table
            .filter(tags::target_kind.eq_any(&kinds))
            .filter(tags::target_id.eq_any(chunk))
            .select((tags::target_id, tags::key, tags::value))
            .load(conn)?;
        for (id, key, value) in rows {
            found.entry(id).or_default().insert(key, value);
        }
    }
    Ok(found)
}

/// Replaces the description of one record (`None` clears it).
pub(super) fn set_description(
    conn: &mut DbConnection,
    kind: RecordKind,
    target_id: i64,
    description: Option<&str>,
) -> Result<()> {
    match kind {
        RecordKind::Model => diesel::update(m::table.filter(m::id.eq(target_id)))
            .set(m::description.eq(description))
            .execute(conn)?,
        RecordKind::Component(_) => diesel::update(c::table.filter(c::id.eq(target_id)))
            .set(c::description.eq(description))
            .execute(conn)?,
    };
    Ok(())
}

impl super::Store {
    /// Sets and unsets tags of the record of `kind` named `name` in
    /// `project`, all or nothing, and returns its tags afterwards. Keys
    /// with [`SYSTEM_TAG_PREFIX`] are refused: see
    /// [`Store::set_system_tags`](super::Store::set_system_tags).
    pub fn update_tags(
        &self,
        project: &ProjectScope,
        kind: RecordKind,
        name: &str,
        change: &TagUpdate,
    ) -> Result<Tags> {
        self.change_tags(project, kind, name, change, Origin::User)
    }

    /// Sets tags with [`SYSTEM_TAG_PREFIX`] (run context such as
    /// `mlmeta.host`) on the record of `kind` named `name` in `project`;
    /// every key must carry the prefix. For the server's own code, never
    /// for keys a request chose.
    #[allow(
        dead_code,
        reason = "the run lifecycle (branch `runs`) records the run context with it"
    )]
    pub fn set_system_tags(
        &self,
        project: &ProjectScope,
        kind: RecordKind,
        name: &str,
        set: &Tags,
    ) -> Result<Tags> {
        let change = TagUpdate {
            set: set.clone(),
            unset: Vec::new(),
        };
        self.change_tags(project, kind, name, &change, Origin::System)
    }

    /// Replaces the description of the record of `kind` named `name` in
    /// `project` (`None` clears it).
    pub fn set_description(
        &self,
        project: &ProjectScope,
        kind: RecordKind,
        name: &str,
        description: Option<&str>,
    ) -> Result<()> {
        self.write(|conn| {
            let project_id = self.known_project(conn, project, kind, name)?;
            let id = target_id(conn, project_id, kind, name)?;
            set_description(conn, kind, id, description)
        })
    }

    fn change_tags(
        &self,
        project: &ProjectScope,
        kind: RecordKind,
        name: &str,
        change: &TagUpdate,
        origin: Origin,
    ) -> Result<Tags> {
        self.write_models(|conn| {
            let project_id = self.known_project(conn, project, kind, name)?;
            let id = target_id(conn, project_id, kind, name)?;
            update(conn, project_id, kind, id, change, origin)
        })
    }

    /// The id of `project`; NOT_FOUND for the record when nothing was ever
    /// stored there (so a project is never created by a tag call).
    fn known_project(
        &self,
        conn: &mut DbConnection,
        project: &ProjectScope,
        kind: RecordKind,
        name: &str,
    ) -> Result<i64> {
        self.project_ids.find(conn, project)?.ok_or_else(|| {
            Error::NotFound(format!(
                "{} {name:?} does not exist (target.name): project {:?} is empty",
                kind.label(),
                project.name()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::security::Caller;
    use crate::store::Store;
    use crate::store::records::{ComponentKind, NewComponent, NewModel};

    /// The server's own code sets system tags; they come back with the
    /// record, requests cannot touch them, and the server cannot set
    /// other keys through the system path. (Both backends are covered by
    /// the integration tests of the request path; this one needs the store
    /// itself, so it runs on a SQLite file.)
    #[test]
    fn system_tags_are_set_only_by_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let store = Store::open(&Config::for_database(
            crate::db::DatabaseUrl::parse(&url).unwrap(),
        ))
        .unwrap();
        let project = Caller::anonymous().project("project", "").unwrap();
        for kind in [ComponentKind::DataBlob, ComponentKind::ModelTemplate] {
            let new = NewComponent {
                name: "c".into(),
                group_name: "g".into(),
                hyperparams: "{}".into(),
            };
            store.put_component(&project, kind, &new, false).unwrap();
        }
        let model = NewModel {
            name: "m".into(),
            model_class_name: "Net".into(),
            datablob_name: "c".into(),
            model_template_name: "c".into(),
            params: "{}".into(),
        };
        store.put_model(&project, &model, false).unwrap();

        let system: Tags = [("mlmeta.host".to_owned(), "gpu-7".to_owned())].into();
        let tags = store
            .set_system_tags(&project, RecordKind::Model, "m", &system)
            .unwrap();
        assert_eq!(tags, system);
        let user = TagUpdate {
            set: [("stage".to_owned(), "dev".to_owned())].into(),
            unset: vec![],
        };
        let tags = store
            .update_tags(&project, RecordKind::Model, "m", &user)
            .unwrap();
        assert_eq!(tags.len(), 2);

        let overwrite = TagUpdate {
            set: system.clone(),
            unset: vec![],
        };
        let error = store
            .update_tags(&project, RecordKind::Model, "m", &overwrite)
            .unwrap_err();
        assert!(error.to_string().contains("reserved for the server"), "{error}");
        let remove = TagUpdate {
            set: Tags::new(),
            unset: vec!["mlmeta.host".into()],
        };
        assert!(
            store
                .update_tags(&project, RecordKind::Model, "m", &remove)
                .is_err()
        );
        let not_system: Tags = [("host".to_owned(), "x".to_owned())].into();
        assert!(
            store
                .set_system_tags(&project, RecordKind::Model, "m", &not_system)
                .is_err()
        );
        let listed = store
            .list_models(
                &project,
                &Default::default(),
                &Default::default(),
                &crate::store::records::PageRequest {
                    size: 10,
                    token: String::new(),
                },
            )
            .unwrap();
        assert_eq!(listed.items[0].tags, tags);
        let error = store
            .set_system_tags(
                &project,
                RecordKind::Component(ComponentKind::DataBlob),
                "nope",
                &system,
            )
            .unwrap_err();
        assert!(matches!(error, Error::NotFound(_)), "{error}");
    }
}
