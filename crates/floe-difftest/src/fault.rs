//! Deliberate faults on side A, so the tester's own tests can show that it detects a
//! difference and minimizes it. Never set them when testing a real file system.

use std::fmt;
use std::str::FromStr;

/// A fault injected on side A.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// After the first operation whose original index is at least `at`, an extra file
    /// appears in side A's run directory.
    ExtraFileOnA { at: usize },
    /// The first operation whose original index is at least `at` and that writes data
    /// writes its first byte inverted on side A (and reports success as usual); a write
    /// that fails leaves the fault armed for the next one.
    CorruptWriteOnA { at: usize },
}

/// The name of the file [`Fault::ExtraFileOnA`] creates.
pub const EXTRA_FILE: &str = "fault-extra-file";

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::ExtraFileOnA { at } => write!(f, "extra-file-on-a:{at}"),
            Fault::CorruptWriteOnA { at } => write!(f, "corrupt-write-on-a:{at}"),
        }
    }
}

impl FromStr for Fault {
    type Err = String;

    /// Parses `extra-file-on-a:N` or `corrupt-write-on-a:N`.
    fn from_str(s: &str) -> Result<Fault, String> {
        let (kind, at) = s.split_once(':').ok_or_else(|| format!("fault {s:?}: expected KIND:INDEX"))?;
        let at = at.parse().map_err(|_| format!("fault {s:?}: bad index"))?;
        match kind {
            "extra-file-on-a" => Ok(Fault::ExtraFileOnA { at }),
            "corrupt-write-on-a" => Ok(Fault::CorruptWriteOnA { at }),
            _ => Err(format!("fault {s:?}: kind is extra-file-on-a or corrupt-write-on-a")),
        }
    }
}
