//! How the daemon names each configured catalog source (in logs, status, the cache and the quota
//! ledger), and the cache's size cap: shared by the catalog service, the catalog report and the
//! daemon's image library, so they live here, below all three.

use crate::config::{Config, SourceSection};

/// Cache size cap handed to the catalog cache when it is opened.
pub const DEFAULT_CACHE_BYTES: u64 = 512 * 1024 * 1024;

fn source_name(source: &SourceSection, index: usize) -> String {
    source.name.clone().unwrap_or_else(|| {
        let kind = source.kind.config_name();
        if index == 0 {
            kind.to_owned()
        } else {
            format!("{kind}-{index}")
        }
    })
}

/// The name the `index`-th source of `config` goes by in logs, status, the cache and the quota
/// ledger: its `name`, or its kind; a later unnamed source of the same kind gets its position
/// appended (`directory-3`).
pub fn source_name_in(config: &Config, index: usize) -> String {
    let sources = &config.catalog.sources;
    let Some(source) = sources.get(index) else {
        return format!("source-{index}");
    };
    if source.name.is_some() {
        return source_name(source, index);
    }
    let earlier_same_kind = sources
        .iter()
        .take(index)
        .any(|s| s.kind == source.kind && s.name.is_none());
    if earlier_same_kind {
        source_name(source, index)
    } else {
        source_name(source, 0)
    }
}
