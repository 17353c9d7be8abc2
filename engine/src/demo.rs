//! `matchstream demo` (placeholder while being written).
/// Runs the demo.
pub fn run(_args: crate::config::DemoArgs) -> anyhow::Result<()> { anyhow::bail!("demo not built yet") }
