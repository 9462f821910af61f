//! Read-model files whose commits are not synced, made safe by noting the
//! OS boot they were written under (ADR 0013).
//!
//! Read models are derived data: the event store is synced, and any read
//! model can be folded again from it. So a read-model file commits with
//! `synchronous = OFF`. SQLite then loses nothing when only the process
//! dies (killed, crashed, restarted): every write has reached the OS, which
//! writes it to disk in its own time. Only an OS crash or a power cut can
//! lose writes, and then any of them, in any order, so the file may be torn
//! in ways no check could rule out.
//!
//! The two cases differ in one thing: whether the OS has restarted since.
//! Before its first unsynced write, a file gets a marker beside it,
//! `<file>-unsynced`, holding the id Linux gives the running boot
//! (`/proc/sys/kernel/random/boot_id`), itself synced. Opening a file whose
//! marker names another boot (the OS restarted with unsynced writes
//! outstanding) throws the file away, and the projectors fold the events
//! into a fresh one. A clean stop syncs the file and removes the marker,
//! so the next boot keeps it.
//!
//! Where there is no boot id (not Linux, or no `/proc`), files are synced
//! as before (`synchronous = NORMAL`): a crash then loses at most the last
//! batches, which are redone from their checkpoint.

use std::{
    fs::{self, File},
    io::{ErrorKind, Write},
    path::{Path, PathBuf},
};

use crate::{Error, Result};

/// Appended to the read-model file's name to name its marker.
pub const MARKER_SUFFIX: &str = "-unsynced";

/// Where the running kernel says which boot this is (a random UUID drawn
/// at every boot).
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// The running boot's id, if the OS gives one.
pub(crate) fn boot_id() -> Option<String> {
    let id = fs::read_to_string(BOOT_ID).ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// How a read-model file's commits reach the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Not synced; the marker beside the file names the boot they are from.
    Unsynced,
    /// Synced by SQLite (`synchronous = NORMAL`).
    Synced,
}

impl Durability {
    /// SQLite's `synchronous` setting for it.
    pub(crate) fn synchronous(&self) -> &'static str {
        match self {
            Durability::Unsynced => "OFF",
            Durability::Synced => "NORMAL",
        }
    }
}

/// Makes `path` safe to open and says how to write it, given the running
/// boot's id (`None`: the OS gives none).
///
/// A file left with unsynced writes under another boot, or under a boot
/// that cannot be told now, is deleted (with its WAL and shared-memory
/// files): it may be torn, and it is derived data. Then, if `boot` is
/// known, the marker is written and synced before anything else is.
pub(crate) fn prepare(path: &Path, boot: Option<&str>) -> Result<Durability> {
    let marker = marker_of(path);
    let found = match fs::read_to_string(&marker) {
        Ok(found) => Some(found.trim().to_owned()),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(io("reading", &marker, e)),
    };
    if let Some(found) = &found
        && boot != Some(found.as_str())
    {
        tracing::warn!(
            file = %path.display(),
            "the OS restarted while the read models had writes not yet on disk, so the file \
             may be torn: deleting it; the projectors fold every event into a fresh one"
        );
        for suffix in ["", "-wal", "-shm"] {
            remove(&with_suffix(path, suffix))?;
        }
        // Last, so that a crash in between deletes again on the next open.
        remove(&marker)?;
        sync_parent(path)?;
    }
    let Some(boot) = boot else {
        return Ok(Durability::Synced);
    };
    if found.as_deref() != Some(boot) {
        let fresh = with_suffix(path, &format!("{MARKER_SUFFIX}.tmp"));
        let mut file = File::create(&fresh).map_err(|e| io("writing", &fresh, e))?;
        file.write_all(format!("{boot}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| io("writing", &fresh, e))?;
        fs::rename(&fresh, &marker).map_err(|e| io("writing", &marker, e))?;
        sync_parent(path)?;
    }
    Ok(Durability::Unsynced)
}

/// Syncs the read-model file at `path` and its WAL, then removes the
/// marker: the file no longer depends on the OS staying up. Call it once
/// SQLite syncs its commits itself, so that none comes after unsynced.
///
/// The files are synced here, not left to a checkpoint: a checkpoint that
/// a reader holds back from copying anything syncs nothing either.
pub(crate) fn synced(path: &Path) -> Result<()> {
    for suffix in ["", "-wal"] {
        let file = with_suffix(path, suffix);
        match File::open(&file) {
            Ok(open) => open.sync_all().map_err(|e| io("syncing", &file, e))?,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io("syncing", &file, e)),
        }
    }
    let marker = marker_of(path);
    remove(&marker)?;
    sync_parent(&marker)
}

/// The marker of the read-model file at `path`.
pub(crate) fn marker_of(path: &Path) -> PathBuf {
    with_suffix(path, MARKER_SUFFIX)
}

/// `path` with `suffix` added to its file name (SQLite's `-wal`, `-shm`).
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(io("deleting", path, e)),
        _ => Ok(()),
    }
}

/// Syncs the folder holding `path`, so that a created, renamed or deleted
/// name there is on disk too.
fn sync_parent(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| io("syncing", parent, e))
}

fn io(what: &str, path: &Path, error: std::io::Error) -> Error {
    Error::Stopped(format!("{what} {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A read-model file with its WAL and shared-memory files.
    fn written(dir: &Path) -> PathBuf {
        let path = dir.join("read-models.db");
        for suffix in ["", "-wal", "-shm"] {
            fs::write(with_suffix(&path, suffix), b"rows").unwrap();
        }
        path
    }

    #[test]
    fn a_file_gets_the_boot_it_is_written_under() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let durability = prepare(&path, Some("boot-1")).unwrap();
        assert_eq!(durability, Durability::Unsynced);
        assert_eq!(durability.synchronous(), "OFF");
        assert_eq!(fs::read_to_string(marker_of(&path)).unwrap(), "boot-1\n");
        // Nothing else was touched, and no temporary file is left.
        assert_eq!(
            files(dir.path()),
            [
                "read-models.db",
                "read-models.db-shm",
                "read-models.db-unsynced",
                "read-models.db-wal"
            ]
        );
    }

    #[test]
    fn the_same_boot_keeps_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        prepare(&path, Some("boot-1")).unwrap();
        // The process stopped without a clean close, the OS did not.
        prepare(&path, Some("boot-1")).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"rows");
        assert_eq!(fs::read(with_suffix(&path, "-wal")).unwrap(), b"rows");
    }

    #[test]
    fn another_boot_throws_the_file_away() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        prepare(&path, Some("boot-1")).unwrap();
        let durability = prepare(&path, Some("boot-2")).unwrap();
        assert_eq!(durability, Durability::Unsynced);
        assert_eq!(files(dir.path()), ["read-models.db-unsynced"]);
        assert_eq!(fs::read_to_string(marker_of(&path)).unwrap(), "boot-2\n");
    }

    #[test]
    fn a_boot_that_cannot_be_told_throws_an_unsynced_file_away() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        prepare(&path, Some("boot-1")).unwrap();
        assert_eq!(prepare(&path, None).unwrap(), Durability::Synced);
        assert!(files(dir.path()).is_empty());
    }

    #[test]
    fn without_a_boot_id_files_are_synced_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let durability = prepare(&path, None).unwrap();
        assert_eq!(durability, Durability::Synced);
        assert_eq!(durability.synchronous(), "NORMAL");
        assert_eq!(files(dir.path()).len(), 3);
    }

    #[test]
    fn a_synced_file_survives_any_boot() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        prepare(&path, Some("boot-1")).unwrap();
        synced(&path).unwrap();
        assert!(!marker_of(&path).exists());
        prepare(&path, Some("boot-2")).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"rows");
    }

    #[test]
    fn the_running_boot_has_an_id_on_linux() {
        if cfg!(target_os = "linux") {
            let id = boot_id().expect("Linux gives a boot id");
            assert_eq!(
                boot_id().as_deref(),
                Some(id.as_str()),
                "the same for the whole boot"
            );
        }
    }
}
