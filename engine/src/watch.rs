//! `matchstream watch` (placeholder while being written).
/// Watches a match.
pub fn run(_args: crate::config::WatchArgs) -> anyhow::Result<()> { anyhow::bail!("watch not built yet") }
