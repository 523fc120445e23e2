//! A LEDVANCE source's catalog call in a refresh, by its `mode` (CATALOGS.md, "The LEDVANCE API
//! as documented by LEDVANCE"):
//!
//! * `list`: the whole catalog, one (conditional) call, like every other cloud source;
//! * `newer`: one documented `newer` call per distinct (manufacturer code, image type, file
//!   version) of the known LEDVANCE and OSRAM devices
//!   ([`ledvance_newer::queries`](crate::catalog::provider::ledvance_newer::queries)), each
//!   paced by the source's minimum call interval, each written ahead into the source's ledger
//!   like any call. 204 means nothing newer; a 400 is logged and only that triple skipped; a
//!   429 (or any other failure) ends the round, and what was answered so far is kept beside
//!   the previous answers for the pairs not reached;
//! * `auto`: the list, and the `newer` round when the list answers 404 or 410 or a shape that
//!   cannot be read (the list is undocumented; LEDVANCE may withdraw it).
//!
//! The round's document is stored as the source's catalog (no validators), so `catalog list`,
//! the merged catalog and the downloads read it exactly as they read the full list.

use super::refresh::pace;
use super::{Clock, CloudSource, KnownDevice, SourceRefresh};
use crate::catalog::cache::{Cache, StoredCatalog, Validators};
use crate::catalog::provider::http::{CatalogClient, CatalogError, Refreshed};
use crate::catalog::provider::ledvance_newer::{self, MAX_NEWER_QUERIES, NewerAnswer};
use crate::catalog::provider::{ParsedCatalog, parse_catalog};
use crate::config::LedvanceMode;

use super::ledger::save_ledger_ahead;

/// True when `auto` falls back from the list to `newer` calls on this list outcome.
pub(super) fn list_unusable(error: &CatalogError) -> bool {
    matches!(
        error,
        CatalogError::Http {
            status: 404 | 410,
            ..
        } | CatalogError::Decode { .. }
    )
}

/// The catalog call of a LEDVANCE source in `mode`; `line` takes what the report should say
/// besides the outcome: failures as errors, a fallback or a skipped device kind as notes.
pub(super) async fn refresh(
    (client, clock, cache): (&CatalogClient, &Clock, &mut Cache),
    source: &mut CloudSource,
    mode: LedvanceMode,
    devices: &[KnownDevice],
    line: &mut SourceRefresh,
) -> Result<Refreshed, CatalogError> {
    if mode != LedvanceMode::Newer {
        let now = clock.now();
        let listed = match save_ledger_ahead(&source.limiter, &source.ledger_path, now) {
            Ok(()) => {
                client
                    .refresh_source(&source.spec, cache, &mut source.limiter, now)
                    .await
            }
            Err(error) => Err(CatalogError::LedgerNotSaved(error)),
        };
        let list_error = match listed {
            Err(error) if mode == LedvanceMode::Auto && list_unusable(&error) => error,
            other => return other,
        };
        if let Err(error) = source.save_ledger() {
            line.errors.push(error);
        }
        tracing::info!(source = %source.spec.provenance.source, error = %list_error, "the list is unusable; asking with `newer` calls (mode = \"newer\" skips the list)");
        // Whatever the round brings, the list's failure is what the outcome names unless the
        // round answered something (or the limit now holds the source back).
        return match newer_round((client, clock, cache), source, devices, line).await {
            Ok(Some(refreshed)) => {
                line.notes.push(format!(
                    "the list is unusable ({list_error}); the catalog comes from `newer` calls (mode = \"newer\" skips the list)"
                ));
                Ok(refreshed)
            }
            Ok(None) => Err(list_error),
            Err(error @ CatalogError::RateLimited { .. }) => Err(error),
            Err(error) => {
                line.errors.push(format!("`newer` fallback: {error}"));
                Err(list_error)
            }
        };
    }
    match newer_round((client, clock, cache), source, devices, line).await? {
        Some(refreshed) => Ok(refreshed),
        None => {
            let previous = cache
                .catalog(&source.spec.provenance.source)
                .filter(|stored| {
                    stored.kind == source.spec.provenance.kind && stored.url == source.spec.url
                })
                .map(|stored| stored.body.clone());
            let catalog = match previous {
                Some(body) => parse(source, &body)?,
                None => ParsedCatalog {
                    entries: Vec::new(),
                    rejected: Vec::new(),
                },
            };
            Ok(Refreshed {
                changed: false,
                catalog,
            })
        }
    }
}

/// One round of `newer` calls (see the module docs): `None` when nothing was answered (no
/// device to ask about, or every call skipped), an error when the first call that failed ended
/// the round before any answer.
async fn newer_round(
    (client, clock, cache): (&CatalogClient, &Clock, &mut Cache),
    source: &mut CloudSource,
    devices: &[KnownDevice],
    line: &mut SourceRefresh,
) -> Result<Option<Refreshed>, CatalogError> {
    let name = source.spec.provenance.source.clone();
    let kind = source.spec.provenance.kind;
    let (queries, over) = ledvance_newer::queries(
        devices
            .iter()
            .map(|d| (d.manufacturer_code, d.image_type, d.current_file_version)),
    );
    if over > 0 {
        line.notes.push(format!(
            "{over} LEDVANCE device kinds beyond the {MAX_NEWER_QUERIES} `newer` calls a refresh makes were not asked about"
        ));
    }
    let previous = cache
        .catalog(&name)
        .filter(|stored| stored.kind == kind && stored.url == source.spec.url)
        .map(|stored| stored.body.clone());
    let asked = queries.len();
    let mut answers = Vec::with_capacity(asked);
    let mut stopped = None;
    for query in queries {
        pace(clock, &source.limiter).await;
        let now = clock.now();
        if let Err(error) = save_ledger_ahead(&source.limiter, &source.ledger_path, now) {
            stopped = Some(CatalogError::LedgerNotSaved(error));
            break;
        }
        let answer = client
            .ledvance_newer(&source.spec, query, &mut source.limiter, now)
            .await;
        if let Err(error) = source.save_ledger() {
            line.errors.push(error);
        }
        let parameters = query.parameters();
        match answer {
            Ok(NewerAnswer::Newer(items)) => {
                tracing::debug!(source = %name, %parameters, firmwares = items.len(), "newer: 200");
                answers.push((query, items));
            }
            Ok(NewerAnswer::NoneNewer) => {
                tracing::debug!(source = %name, %parameters, "newer: 204, nothing newer");
                answers.push((query, Vec::new()));
            }
            Ok(NewerAnswer::Invalid) => {
                tracing::warn!(source = %name, %parameters, "newer: 400 invalid request; this device kind is skipped");
                line.notes.push(format!(
                    "newer {parameters}: HTTP 400 invalid request; skipped"
                ));
            }
            Err(CatalogError::Decode { error, .. }) => {
                tracing::warn!(source = %name, %parameters, %error, "newer: unreadable answer; skipped");
                line.notes
                    .push(format!("newer {parameters}: {error}; skipped"));
            }
            Err(error) => {
                stopped = Some(error);
                break;
            }
        }
    }
    if answers.is_empty() {
        return stopped.map_or(Ok(None), Err);
    }
    if let Some(error) = &stopped {
        line.errors.push(format!(
            "`newer` calls stopped after {} of {asked}: {error}; the rest keep their previous answers",
            answers.len()
        ));
    }
    let body = ledvance_newer::assemble(previous.as_deref(), &answers);
    let catalog = parse(source, &body)?;
    let changed = previous.as_deref() != Some(body.as_slice());
    cache.store_catalog(StoredCatalog {
        source: name,
        kind,
        url: source.spec.url.clone(),
        validators: Validators::default(),
        fetched_at: clock.now(),
        body,
    })?;
    Ok(Some(Refreshed { changed, catalog }))
}

fn parse(source: &CloudSource, body: &[u8]) -> Result<ParsedCatalog, CatalogError> {
    let spec = &source.spec;
    parse_catalog(spec.provenance.kind, body, &spec.url, &spec.provenance).map_err(|error| {
        CatalogError::Decode {
            source_name: spec.provenance.source.clone(),
            error,
        }
    })
}
