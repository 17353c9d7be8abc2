//! `matchstream replay` (placeholder while being written).
/// Runs a replay.
pub fn run(_args: crate::config::ReplayArgs) -> anyhow::Result<()> { anyhow::bail!("replay not built yet") }
