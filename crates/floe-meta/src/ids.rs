//! Newtypes for the identifiers that cross crate boundaries.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// One file system among those a metadata engine holds.
    FileSystemId
);
id_type!(
    /// An inode number, unique within a file system; 1 is the root directory.
    InodeId
);
id_type!(
    /// A slice: an immutable run of bytes written at once, stored inline in the
    /// metadata or as block objects. 0 stands for a hole (zeros).
    SliceId
);
id_type!(
    /// A client session (one mounting process), used to expire what a dead client held.
    SessionId
);

impl InodeId {
    pub const ROOT: InodeId = InodeId(1);
}

impl SliceId {
    pub const HOLE: SliceId = SliceId(0);
}
