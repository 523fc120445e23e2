//! How the daemon names each configured catalog source (in logs, status, the cache and the quota
//! ledger), and the cache's size cap: shared by the catalog service, the catalog report and the
//! daemon's image library, so they live here, below all three.

use crate::config::{Config, SourceKind, SourceSection};

/// Cache size cap handed to the catalog cache when it is opened.
pub const DEFAULT_CACHE_BYTES: u64 = 512 * 1024 * 1024;

fn source_name(source: &SourceSection, index: usize) -> String {
    source.name.clone().unwrap_or_else(|| {
        let kind = kind_name(source.kind);
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

/// The config's spelling of a source kind.
pub fn kind_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Ledvance => "ledvance",
        SourceKind::ZigbeeOtaIndex => "zigbee-ota-index",
        SourceKind::Directory => "directory",
        SourceKind::Ikea => "ikea",
        SourceKind::Inovelli => "inovelli",
        SourceKind::ThirdReality => "thirdreality",
        SourceKind::Sonoff => "sonoff",
        SourceKind::ZigpyOta => "zigpy-ota",
        SourceKind::Salus => "salus",
    }
}

/// The catalog model's kind of a configured source; `None` for a folder (no catalog document)
/// and for the refused `salus`.
pub fn model_kind(kind: SourceKind) -> Option<crate::catalog::model::SourceKind> {
    use crate::catalog::model::SourceKind as Model;
    match kind {
        SourceKind::Ledvance => Some(Model::Ledvance),
        SourceKind::ZigbeeOtaIndex => Some(Model::ZigbeeOtaIndex),
        SourceKind::Ikea => Some(Model::Ikea),
        SourceKind::Inovelli => Some(Model::Inovelli),
        SourceKind::ThirdReality => Some(Model::ThirdReality),
        SourceKind::Sonoff => Some(Model::Sonoff),
        SourceKind::ZigpyOta => Some(Model::ZigpyOta),
        SourceKind::Directory | SourceKind::Salus => None,
    }
}
