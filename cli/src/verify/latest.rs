//! The latest-state tables (`orders`, `disputes`) against their events: each
//! state row must name its entity's newest stored event, by the design's
//! latest-state order (event time, lifecycle rank, provider event id in byte
//! order), and every entity with events must have a state row.
//!
//! A declared type's rows share `entities` and `events` with the other
//! declared types: its audit reads only the rows of its type.
//!
//! The ranks are the definition's ([`Definition::lifecycle`]), passed to the
//! query as two arrays, so that the audit and the worker read one definition
//! and the audit needs no column the worker may or may not have written.

use anyhow::Context;
use chrono::{DateTime, Utc};
use hookline_contract::Storage;
use hookline_contract::definition::Definition;
use sqlx::Row;

use super::report::{EventRef, Inconsistent, StateAudit};
use crate::local::shards::Shard;

/// State rows compared per query: paged by entity id, so that memory and each
/// query's cost stay bounded whatever the table's size.
const PAGE: i64 = 1000;

/// The rows of one type in the shared tables: `AND <alias>.type = $<n>` for a
/// declared type, nothing for a built-in one, whose tables are its own.
fn of_type(event_type: &Definition, alias: &str, n: usize) -> String {
    if event_type.storage == Storage::Declared {
        format!(" AND {alias}.type = ${n}")
    } else {
        String::new()
    }
}

/// The state table as the report names it.
fn table_name(event_type: &Definition) -> String {
    let table = event_type.storage.state_table();
    if event_type.storage == Storage::Declared {
        format!("{table} ({})", event_type.name)
    } else {
        table.to_owned()
    }
}

/// Audits the state table of `event_type` on `shard`.
pub async fn audit(shard: &Shard, event_type: &Definition) -> anyhow::Result<StateAudit> {
    let storage = event_type.storage;
    let mut audit = StateAudit {
        shard: shard.name.clone(),
        table: table_name(event_type),
        ..StateAudit::default()
    };
    let (names, ranks): (Vec<&str>, Vec<i32>) = event_type
        .lifecycle
        .iter()
        .map(|(name, rank)| (name.as_str(), i32::from(*rank)))
        .unzip();
    let declared = (storage == Storage::Declared).then_some(event_type.name.as_str());
    let (first, next) = (newest_sql(event_type, true), newest_sql(event_type, false));
    let mut after: Option<String> = None;
    loop {
        let sql = if after.is_none() { &first } else { &next };
        let mut query = sqlx::query(sql)
            .bind(&names)
            .bind(&ranks)
            .bind(after.as_deref())
            .bind(PAGE);
        if let Some(name) = declared {
            query = query.bind(name);
        }
        let rows = query.fetch_all(&shard.pool).await.with_context(|| {
            format!(
                "comparing {} with {} on shard {}",
                storage.state_table(),
                storage.events_table(),
                shard.name
            )
        })?;
        let page = rows.len() as i64;
        for row in rows {
            let entity_id: String = row.try_get("entity_id").context("reading entity_id")?;
            let stored = event(&row, "state").context("reading a state row")?;
            let newest = event(&row, "newest").context("reading a newest event")?;
            audit.checked += 1;
            if stored != newest {
                audit.add(Inconsistent {
                    entity_id: entity_id.clone(),
                    stored,
                    newest,
                });
            }
            after = Some(entity_id);
        }
        if page < PAGE {
            break;
        }
    }
    orphans(shard, event_type, (&names, &ranks), &mut audit).await?;
    Ok(audit)
}

/// The latest-state order as SQL over the events table aliased `e`, newest
/// first: event time, then the lifecycle rank (`$1` the event types, `$2`
/// their ranks; an unlisted type ranks 0), then the provider id in byte order
/// (`COLLATE "C"`) whatever the database's locale, as the worker compares.
const NEWEST_FIRST: &str = "e.created_at DESC,
    COALESCE((SELECT l.rank FROM unnest($1::text[], $2::int[]) AS l(name, rank)
              WHERE l.name = e.event_type), 0) DESC,
    e.provider_event_id COLLATE \"C\" DESC";

/// A page of `$4` state rows (the first page, or those after the entity id
/// `$3`), each with its entity's newest stored event. Two texts rather than
/// `$3 IS NULL OR …`, so that both pages walk the primary key's index.
fn newest_sql(event_type: &Definition, first: bool) -> String {
    let storage = event_type.storage;
    let (state, events, entity) = (
        storage.state_table(),
        storage.events_table(),
        storage.entity_column(),
    );
    let from = if first {
        "$3::text IS NULL".to_owned()
    } else {
        format!("{entity} > $3")
    };
    let (state_of_type, same_type) = (
        of_type(event_type, state, 5),
        if event_type.storage == Storage::Declared {
            " AND e.type = s.type"
        } else {
            ""
        },
    );
    // Table and column names come from the registry, never from input.
    format!(
        "SELECT s.{entity} AS entity_id,
                s.last_event_id AS state_id, s.last_event_type AS state_type, s.last_event_at AS state_at,
                n.provider_event_id AS newest_id, n.event_type AS newest_type, n.created_at AS newest_at
         FROM (SELECT * FROM {state} WHERE {from}{state_of_type} ORDER BY {entity} LIMIT $4) s
         LEFT JOIN LATERAL (
             SELECT e.provider_event_id, e.event_type, e.created_at
             FROM {events} e
             WHERE e.{entity} = s.{entity}{same_type}
             ORDER BY {NEWEST_FIRST}
             LIMIT 1
         ) n ON true
         ORDER BY s.{entity}"
    )
}

/// The event a row names under the column prefix `prefix`, if any.
fn event(row: &sqlx::postgres::PgRow, prefix: &str) -> anyhow::Result<Option<EventRef>> {
    let id: Option<String> = row.try_get(format!("{prefix}_id").as_str())?;
    let event_type: Option<String> = row.try_get(format!("{prefix}_type").as_str())?;
    let at: Option<DateTime<Utc>> = row.try_get(format!("{prefix}_at").as_str())?;
    Ok(match (id, event_type, at) {
        (Some(provider_event_id), Some(event_type), Some(at)) => Some(EventRef {
            provider_event_id,
            event_type,
            at,
        }),
        _ => None,
    })
}

/// Entities with stored events and no state row: every one counted, the
/// first listed, each with its newest event.
async fn orphans(
    shard: &Shard,
    event_type: &Definition,
    (names, ranks): (&[&str], &[i32]),
    audit: &mut StateAudit,
) -> anyhow::Result<()> {
    let storage = event_type.storage;
    let (state, events, entity) = (
        storage.state_table(),
        storage.events_table(),
        storage.entity_column(),
    );
    let (events_of_type, same_type) = (
        of_type(event_type, "e", 4),
        if event_type.storage == Storage::Declared {
            " AND s.type = e.type"
        } else {
            ""
        },
    );
    // `count(*) OVER ()` counts every orphan before the LIMIT keeps the first.
    let sql = format!(
        "SELECT count(*) OVER () AS total, o.*
         FROM (SELECT DISTINCT ON (e.{entity}) e.{entity} AS entity_id,
                      e.provider_event_id AS newest_id, e.event_type AS newest_type,
                      e.created_at AS newest_at
               FROM {events} e
               WHERE NOT EXISTS (SELECT 1 FROM {state} s WHERE s.{entity} = e.{entity}{same_type}){events_of_type}
               ORDER BY e.{entity}, {NEWEST_FIRST}) o
         ORDER BY o.entity_id
         LIMIT $3"
    );
    let mut query = sqlx::query(&sql)
        .bind(names)
        .bind(ranks)
        .bind(super::report::LISTED as i64);
    if event_type.storage == Storage::Declared {
        query = query.bind(event_type.name.as_str());
    }
    let rows = query.fetch_all(&shard.pool).await.with_context(|| {
        format!(
            "looking for {} without a row in {} on shard {}",
            events, state, shard.name
        )
    })?;
    let total: i64 = match rows.first() {
        Some(row) => row.try_get("total").context("reading the orphan count")?,
        None => 0,
    };
    for row in &rows {
        let entity_id: String = row.try_get("entity_id").context("reading entity_id")?;
        let newest = event(row, "newest").context("reading a newest event")?;
        audit.add(Inconsistent {
            entity_id,
            stored: None,
            newest,
        });
    }
    // The orphans beyond the listed ones are counted, not named.
    audit.inconsistent += (total as u64).saturating_sub(rows.len() as u64);
    Ok(())
}
