//! The watcher token when none is configured: generated at start, written to a file only its
//! owner can read, never logged (the log names the file).
//!
//! Where the file goes: `<dir>/token` with the embedded store (the data directory is the
//! node's own, like its data); otherwise `$XDG_RUNTIME_DIR/matchstream-<API port>.token`
//! (a per-user directory of mode 0700), or the system's temp directory when that is unset.
//! The API port tells apart the nodes of one host. The file is created with mode 0600, not
//! through a symbolic link, and removed at a clean stop.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::config::StoreSpec;

/// The file a generated token is written to, for a node with this store and API port.
pub fn file_for(store: &StoreSpec, api_port: u16) -> PathBuf {
    match store {
        StoreSpec::Embedded(dir) => dir.join("token"),
        StoreSpec::Memory | StoreSpec::Redis(_) => {
            let dir = std::env::var_os("XDG_RUNTIME_DIR")
                .map(PathBuf::from)
                .filter(|d| d.is_dir())
                .unwrap_or_else(std::env::temp_dir);
            dir.join(format!("matchstream-{api_port}.token"))
        }
    }
}

/// A new random token: 16 bytes from the OS, in hex.
pub fn generate() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        // Fall back to time and pid: still unguessable enough for a development server.
        let seed = crate::api::handlers::now_ms() ^ u64::from(std::process::id()) << 32;
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `token` (and a newline) to `path` with mode 0600, creating its directory if needed.
/// Refuses a symbolic link at `path` (a shared temp directory), and makes an existing file
/// 0600 before writing.
pub fn write(path: &Path, token: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    // An older file keeps its mode through open: set it before the token goes in.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.set_len(0)?;
    writeln!(file, "{token}")?;
    file.sync_all()
}

/// Removes the token file of a stopping node (a missing file is fine).
pub fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            log::warn!(target: "matchstream::server", "cannot remove {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_token_is_readable_by_its_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("token");
        write(&path, "abc").expect("write");
        let meta = std::fs::metadata(&path).expect("metadata");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "abc\n");
        // An existing, wider file is narrowed and rewritten.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write(&path, "de").expect("rewrite");
        let meta = std::fs::metadata(&path).expect("metadata");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "de\n");
        remove(&path);
        assert!(!path.exists());
    }

    #[test]
    fn a_symbolic_link_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("target");
        std::fs::write(&target, "keep").expect("target");
        let link = dir.path().join("token");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        assert!(write(&link, "abc").is_err());
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep");
    }

    #[test]
    fn the_embedded_store_keeps_it_in_its_directory() {
        let spec = StoreSpec::Embedded(PathBuf::from("/srv/ms"));
        assert_eq!(file_for(&spec, 8888), PathBuf::from("/srv/ms/token"));
        let other = file_for(&StoreSpec::Memory, 8888);
        assert!(
            other.ends_with("matchstream-8888.token"),
            "{}",
            other.display()
        );
    }

    #[test]
    fn tokens_are_32_hex_digits_and_differ() {
        let (a, b) = (generate(), generate());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
