//! One refresh of the catalog service: each source's catalog call (or local index read), the
//! lazy downloads of the images known devices could take, pruning and the ledger writes (the
//! steps listed in the service's module docs).

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::known_devices::save_known_devices;
use super::ledger::save_ledger_ahead;
use super::ledvance;
use super::report::{
    CatalogOutcome, Download, DownloadOutcome, Progress, RefreshReport, SourceRefresh, Usage,
    reason_name,
};
use super::{CatalogService, Clock, KnownDevice, load_known_devices, read_capped};
use crate::catalog::cache::{Cache, StoredCatalog, Validators};
use crate::catalog::limiter::{LimitReason, Limiter, unix_seconds};
use crate::catalog::merged::MergedCatalog;
use crate::catalog::model::{CatalogEntry, DeviceQuery, ImageHash, SourceKind};
use crate::catalog::partial_image::MAX_IMAGE_DOWNLOAD_BYTES;
use crate::catalog::provider::http::{
    CatalogClient, CatalogError, HttpSettings, Refreshed, SourceSpec,
};
use crate::catalog::provider::parse_catalog;
use crate::catalog::scheduler::ImageHolds;

/// Longest wait for a source's minimum call interval between two calls of one refresh; any
/// longer hold defers the call to a later refresh.
const MAX_PACING_WAIT: Duration = Duration::from_secs(120);
impl CatalogService {
    pub(super) async fn run<F>(
        &mut self,
        known_devices: &[KnownDevice],
        fetch_catalogs: bool,
        holds: &ImageHolds,
        mut progress: F,
    ) -> RefreshReport
    where
        F: FnMut(&Progress) + Send,
    {
        let started = self.clock.now();
        let mut general_errors = Vec::new();
        let known_devices = if known_devices.is_empty() {
            load_known_devices(&self.state_dir).unwrap_or_else(|error| {
                tracing::warn!(%error, "saved devices unreadable; downloading for none");
                general_errors.push(error.to_string());
                Vec::new()
            })
        } else {
            known_devices.to_vec()
        };
        let mut lines: Vec<SourceRefresh> = Vec::with_capacity(self.sources.len());
        for source in &mut self.sources {
            let name = source.spec.provenance.source.clone();
            let mut line = SourceRefresh::new(&name, source.spec.provenance.kind);
            if let Some(note) = source.ledger_note.take() {
                line.errors.push(note);
            }
            if !fetch_catalogs {
                line.catalog = CatalogOutcome::NotRequested;
                lines.push(line);
                continue;
            }
            let now = self.clock.now();
            let client = source.client.clone().unwrap_or_else(|| self.client.clone());
            let result = match &source.local_index {
                Some(path) => refresh_local_index(&source.spec, path, &mut self.cache, now),
                None if source.spec.provenance.kind == SourceKind::Ledvance => {
                    let mode = source.mode;
                    ledvance::refresh(
                        (&client, &self.clock, &mut self.cache),
                        source,
                        mode,
                        &known_devices,
                        &mut line,
                    )
                    .await
                }
                None => match save_ledger_ahead(&source.limiter, &source.ledger_path, now) {
                    Ok(()) => {
                        client
                            .refresh_source(&source.spec, &mut self.cache, &mut source.limiter, now)
                            .await
                    }
                    Err(error) => Err(CatalogError::LedgerNotSaved(error)),
                },
            };
            let outcome = match result {
                Ok(refreshed) if refreshed.changed => CatalogOutcome::Changed {
                    rejected: refreshed.catalog.rejected.len(),
                },
                Ok(_) => CatalogOutcome::Unchanged,
                Err(CatalogError::RateLimited { retry, .. }) => CatalogOutcome::skipped(retry),
                Err(error) => {
                    let error = error.to_string();
                    tracing::warn!(source = %name, %error, "catalog refresh failed; the cached catalog stays");
                    line.errors.push(error.clone());
                    CatalogOutcome::Failed { error }
                }
            };
            if !matches!(outcome, CatalogOutcome::Skipped { .. })
                && let Err(error) = source.save_ledger()
            {
                line.errors.push(error);
            }
            tracing::info!(source = %name, outcome = %outcome, "catalog refresh");
            progress(&Progress::Catalog {
                source: name,
                outcome: outcome.clone(),
            });
            line.catalog = outcome;
            lines.push(line);
        }

        // What the cache serves now, from every source whose catalog is readable.
        let mut catalogs = Vec::new();
        for (source, line) in self.sources.iter().zip(lines.iter_mut()) {
            let Some(stored) = self.cache.catalog(&source.spec.provenance.source) else {
                continue;
            };
            match stored.source_catalog() {
                Ok(catalog) => {
                    line.entries = catalog.entries.len();
                    catalogs.push(catalog);
                }
                Err(error) => line
                    .errors
                    .push(format!("cached catalog unreadable: {error}")),
            }
        }
        let merged = MergedCatalog::new(catalogs);
        let queries: Vec<DeviceQuery<'_>> = known_devices.iter().map(KnownDevice::query).collect();
        let all_wanted = merged.images_for(queries.iter());
        // Only what known devices want counts as referenced: a catalog listing an image does
        // not keep it cached (issue 18: the cap must be able to prune).
        let referenced: HashSet<ImageHash> = all_wanted.iter().map(|e| e.hash).collect();
        let wanted: Vec<CatalogEntry> = all_wanted
            .into_iter()
            .filter(|entry| self.cache.image_path(entry).is_none())
            .cloned()
            .collect();
        let mut pruned = Vec::new();
        match self.cache.prune(&referenced) {
            Ok(report) => pruned.extend(report.removed),
            Err(error) => general_errors.push(format!("pruning the cache: {error}")),
        }
        for entry in wanted {
            let Some(index) = self
                .sources
                .iter()
                .position(|s| s.spec.provenance == entry.provenance)
            else {
                continue;
            };
            let (Some(source), Some(line)) = (self.sources.get_mut(index), lines.get_mut(index))
            else {
                continue;
            };
            let download = match holds.active(&entry, self.clock.now()) {
                Some(hold) => ImageHolds::deferral(&entry, hold),
                // Larger than any OTA file: the HTTP edge refuses it (and says so) below.
                None if entry.size.bytes() <= MAX_IMAGE_DOWNLOAD_BYTES
                    && !self.cache.has_room_for(entry.size.bytes(), &referenced) =>
                {
                    cache_full_download(&entry, self.cache.max_image_bytes(), self.clock.now())
                }
                None => {
                    let client = source.client.as_ref().unwrap_or(&self.client);
                    download(
                        client,
                        &self.clock,
                        &mut self.cache,
                        (&mut source.limiter, &source.ledger_path),
                        &source.spec.url,
                        &entry,
                    )
                    .await
                }
            };
            if let DownloadOutcome::Failed { error } = &download.outcome {
                line.errors.push(error.clone());
            }
            if !matches!(download.outcome, DownloadOutcome::Deferred { .. })
                && let Err(error) = source.save_ledger()
            {
                line.errors.push(error);
            }
            progress(&Progress::Download {
                source: line.name.clone(),
                download: download.clone(),
            });
            line.downloads.push(download);
        }

        let mut report = RefreshReport {
            started_unix: unix_seconds(started),
            finished_unix: 0,
            sources: lines,
            pruned: Vec::new(),
            cache_over_cap_by: 0,
            errors: general_errors,
        };
        match self.cache.prune(&referenced) {
            Ok(after) => {
                report.pruned = pruned
                    .iter()
                    .chain(&after.removed)
                    .map(|removed| removed.path.display().to_string())
                    .collect();
                report.cache_over_cap_by = after.over_cap_by;
            }
            Err(error) => report.errors.push(format!("pruning the cache: {error}")),
        }

        let finished = self.clock.now();
        for (source, line) in self.sources.iter().zip(report.sources.iter_mut()) {
            line.usage = Usage::of(&source.limiter, finished);
            // Also saves what changed without a call (a held-back ledger after a corrupt one).
            if let Err(error) = source.save_ledger() {
                line.errors.push(error);
            }
        }
        if !known_devices.is_empty()
            && let Err(error) = save_known_devices(&self.state_dir, &known_devices)
        {
            report
                .errors
                .push(format!("saving the known devices: {error}"));
        }
        report.finished_unix = unix_seconds(finished);
        report
    }
}

/// Reads a `zigbee-ota-index` kept as a local file and stores it in the cache when its bytes
/// differ from the cached ones ("unchanged" otherwise). A file that does not parse is not
/// stored: the previous catalog stays.
fn refresh_local_index(
    spec: &SourceSpec,
    path: &Path,
    cache: &mut Cache,
    now: SystemTime,
) -> Result<Refreshed, CatalogError> {
    let name = &spec.provenance.source;
    let kind = spec.provenance.kind;
    let unreadable = |message: String| CatalogError::Transport {
        url: spec.url.clone(),
        message,
    };
    let body = match read_capped(path, HttpSettings::default().max_catalog_bytes) {
        Ok(Some(body)) => body,
        Ok(None) => return Err(unreadable("no such file".to_owned())),
        Err(error) => return Err(unreadable(error.to_string())),
    };
    let catalog = parse_catalog(kind, &body, &spec.url, &spec.provenance).map_err(|error| {
        CatalogError::Decode {
            source_name: name.clone(),
            error,
        }
    })?;
    let unchanged = cache
        .catalog(name)
        .is_some_and(|stored| stored.kind == kind && stored.url == spec.url && stored.body == body);
    if !unchanged {
        cache.store_catalog(StoredCatalog {
            source: name.clone(),
            kind,
            url: spec.url.clone(),
            validators: Validators::default(),
            fetched_at: now,
            body,
        })?;
    }
    Ok(Refreshed {
        changed: !unchanged,
        catalog,
    })
}

/// Waits out the source's minimum call interval when that is all that holds the next call and
/// it is short; any other hold is left for the call itself to report.
pub(super) async fn pace(clock: &Clock, limiter: &Limiter) {
    if let Err(retry) = limiter.check(clock.now())
        && retry.reason == LimitReason::MinInterval
    {
        let wait = retry
            .at
            .duration_since(clock.now())
            .unwrap_or(Duration::ZERO);
        if wait <= MAX_PACING_WAIT {
            clock.sleep(wait).await;
        }
    }
}

/// Downloads one image, first waiting out the source's minimum call interval when that is
/// short; any other hold defers it.
async fn download(
    client: &CatalogClient,
    clock: &Clock,
    cache: &mut Cache,
    (limiter, ledger_path): (&mut Limiter, &Path),
    source_url: &str,
    entry: &CatalogEntry,
) -> Download {
    pace(clock, limiter).await;
    let now = clock.now();
    let (_, bytes_before) = limiter.usage(now);
    let result = match save_ledger_ahead(limiter, ledger_path, now) {
        Ok(()) => {
            client
                .ensure_image(entry, source_url, cache, limiter, now)
                .await
        }
        Err(error) => Err(CatalogError::LedgerNotSaved(error)),
    };
    let (_, bytes_after) = limiter.usage(now);
    let outcome = match result {
        Ok(()) => DownloadOutcome::Stored {
            bytes: bytes_after.saturating_sub(bytes_before),
        },
        Err(CatalogError::RateLimited { retry, .. }) => DownloadOutcome::Deferred {
            until_unix: unix_seconds(retry.at),
            reason: reason_name(retry.reason).to_owned(),
        },
        Err(error) => DownloadOutcome::Failed {
            error: error.to_string(),
        },
    };
    let label = format!(
        "{:04x}/{:04x}/{:08x}",
        entry.manufacturer_code, entry.image_type, entry.file_version
    );
    match &outcome {
        DownloadOutcome::Failed { error } => {
            tracing::warn!(source = %entry.provenance.source, image = %label, %error, "image download failed; nothing stored");
        }
        other => {
            tracing::info!(source = %entry.provenance.source, image = %label, outcome = %other, "image download");
        }
    }
    Download::of(entry, outcome)
}

/// A download not started: the image would not fit under the cache's cap beside the images
/// known devices want. Tried again at the next refresh (a device may have moved on).
fn cache_full_download(entry: &CatalogEntry, cap: u64, now: SystemTime) -> Download {
    Download::of(
        entry,
        DownloadOutcome::Deferred {
            until_unix: unix_seconds(now),
            reason: format!("the image cache is full (cap {cap} bytes)"),
        },
    )
}
