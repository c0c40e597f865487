//! What a rescan changes: the datasets found again are compared with the ones being served,
//! and only those whose file or description changed (or whose map is poisoned) replace the
//! served `Arc`. Everything else keeps its map, so a rescan of an unchanged directory costs
//! readers nothing; the scan itself is `registry`'s.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::dataset::Dataset;
use crate::registry::Skipped;

/// What one rescan did, as `POST /v1/admin/rescan` answers it.
#[derive(Debug, Default, Serialize)]
pub struct RescanReport {
    /// Names served now that were not before.
    pub added: Vec<String>,
    /// Names no longer served (file gone or no longer valid).
    pub removed: Vec<String>,
    /// Names served before and now, over a new map.
    pub remapped: Vec<String>,
    /// Files and registrations that could not be loaded, with the reason.
    pub skipped: Vec<Skipped>,
}

/// Whether `old` may go on serving in place of the freshly loaded `new`: same file (device,
/// inode, size, mtime at map time), same region and description, and a whole map. A poisoned
/// map never is: its zero pages are never replaced, so only a new map heals it.
pub fn keeps(old: &Dataset, new: &Dataset) -> bool {
    !old.poisoned()
        && old.mapped.identity == new.mapped.identity
        && old.file == new.file
        && old.dtype == new.dtype
        && old.shape == new.shape
        && old.order == new.order
        && old.offset == new.offset
        && old.dims == new.dims
        && old.attrs == new.attrs
}

/// The map to serve after a rescan that found `found`, given the one served now, and the
/// names it added, removed and re-mapped (each sorted, as the maps are).
pub fn merge(
    old: &BTreeMap<String, Arc<Dataset>>,
    found: BTreeMap<String, Dataset>,
    report: &mut RescanReport,
) -> BTreeMap<String, Arc<Dataset>> {
    let mut next = BTreeMap::new();
    for (name, new) in found {
        let chosen = match old.get(&name) {
            Some(old) if keeps(old, &new) => Arc::clone(old),
            Some(_) => {
                report.remapped.push(name.clone());
                Arc::new(new)
            }
            None => {
                report.added.push(name.clone());
                Arc::new(new)
            }
        };
        next.insert(name, chosen);
    }
    report.removed = old
        .keys()
        .filter(|name| !next.contains_key(*name))
        .cloned()
        .collect();
    next
}
