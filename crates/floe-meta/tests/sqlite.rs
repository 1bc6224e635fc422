//! The metadata conformance suite (`floe_meta::conformance`) against the SQLite backend:
//! one test per check, each on a fresh database in a temporary directory. Another
//! backend's test file does the same with its own `open`.

use floe_meta::{conformance, Meta, SqliteStore};
use tempfile::TempDir;

/// A fresh SQLite metadata engine; the directory must outlive it.
fn open() -> (TempDir, Meta) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let store = SqliteStore::open(&dir.path().join("meta.db")).expect("open the SQLite store");
    (dir, Meta::new(store))
}

macro_rules! conformance_tests {
    ($($(#[$attr:meta])* $check:ident),* $(,)?) => {
        $(
            #[test]
            $(#[$attr])*
            fn $check() {
                let (_dir, meta) = open();
                conformance::$check(&meta);
            }
        )*

        #[test]
        fn every_check_has_a_test() {
            let tested = [$(stringify!($check)),*];
            for (name, _) in conformance::CHECKS {
                assert!(tested.contains(name), "conformance::{name} has no test in tests/sqlite.rs");
            }
            assert_eq!(tested.len(), conformance::CHECKS.len(), "a test runs a check missing from CHECKS");
        }
    };
}

conformance_tests!(
    check_create_fs,
    check_fs_names,
    check_list_fs,
    check_delete_fs,
    check_mknod_kinds,
    check_lookup_dot_and_dotdot,
    check_name_limits,
    check_mknod_errors,
    check_dir_nlink,
    check_umask,
    check_setgid_inheritance,
    check_parent_times,
    check_create_needs_write_permission,
    check_sticky_directory,
    check_lookup_needs_exec,
    check_link,
    check_unlink_and_purge,
    check_unlink_purging,
    check_sustained_inode,
    check_close_session_purges,
    check_expire_sessions,
    check_fsck_namespace,
    check_rmdir,
    check_rename_simple,
    check_rename_across_directories,
    check_rename_replace_file,
    check_rename_replace_dir,
    check_rename_kind_mismatch,
    check_rename_no_replace,
    check_rename_exchange,
    check_rename_below_itself,
    check_rename_hard_links_noop,
    check_readdir_pages,
    check_readdir_concurrent_changes,
    check_symlink,
    check_chmod,
    check_chown,
    check_truncate_holes,
    check_truncate_errors,
    check_utimes,
    check_commit_write,
    check_commit_truncate_write,
    check_statfs_usage,
    check_symlink_usage,
    check_garbage_after_truncate,
    check_garbage_after_purge,
    check_reserved_slice_lifecycle,
    check_fallocate,
    check_replace_chunk_prefix,
    check_fragmented_chunks,
    check_xattr_basics,
    check_xattr_flags_and_limits,
    check_xattr_permissions,
    check_concurrent_creates,
    check_access_points,
    check_access_point_errors,
    check_policy,
    check_access_point_root,
    check_symlink_parent,
    check_resolve_symlink,
    check_lock_split_and_merge,
    check_lock_unlock_sub_range,
    check_lock_upgrade_and_downgrade,
    check_lock_conflicts,
    check_lock_release,
    check_lock_session_end_frees_locks,
    check_records,
    check_record_conditions,
);

/// Checks that fail because of a known bug (and are ignored above).
const KNOWN_BUGS: &[&str] = &[];

/// All checks one after the other on one database (what `conformance::run_all` does,
/// less the known bugs): they must not disturb each other.
#[test]
fn all_checks_on_one_store() {
    let (_dir, meta) = open();
    for (name, check) in conformance::CHECKS {
        if !KNOWN_BUGS.contains(name) {
            check(&meta);
        }
    }
}
