//! [`conformance_tests!`](crate::conformance_tests): one `#[test]` per conformance
//! check, so that every backend's test file runs the same list.

/// Expands to one `#[test]` per check of [`conformance`](crate::conformance), plus
/// `every_check_has_a_test` (the list below and `CHECKS` agree) and
/// `all_checks_on_one_store` (every check in turn on one engine).
///
/// `$open` is a function returning `Option<(G, Meta)>`: a fresh engine and a guard
/// that keeps its database alive (a temporary directory, a schema it drops), or
/// `None` when the backend is not available here (its test then passes, having said
/// so: the open function prints why).
#[macro_export]
macro_rules! conformance_tests {
    ($open:path) => {
        $crate::conformance_tests!(@tests $open;
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
            check_list_sessions,
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
    };
    (@tests $open:path; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let Some((_guard, meta)) = $open() else { return };
                $crate::conformance::$check(&meta);
            }
        )*

        #[test]
        fn every_check_has_a_test() {
            let tested = [$(stringify!($check)),*];
            for (name, _) in $crate::conformance::CHECKS {
                assert!(tested.contains(name), "conformance::{name} has no test in floe_meta::conformance_tests!");
            }
            assert_eq!(tested.len(), $crate::conformance::CHECKS.len(), "a test runs a check missing from CHECKS");
        }

        /// All checks one after the other on one engine: they must not disturb each other.
        #[test]
        fn all_checks_on_one_store() {
            let Some((_guard, meta)) = $open() else { return };
            $crate::conformance::run_all(&meta);
        }
    };
}
