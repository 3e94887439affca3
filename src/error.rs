//! kiln's error type: every failure a user can cause names the file, line and what to do.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A place in a user's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<PathBuf>,
    pub line: u32,
    pub column: u32,
}

impl Location {
    pub fn new(file: Arc<PathBuf>, line: u32, column: u32) -> Self {
        Self { file, line, column }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{location}: YAML syntax error: {message}")]
    Yaml { location: Location, message: String },

    /// Content that parsed as YAML but is not a valid playbook, role, inventory or vars file.
    #[error("{location}: {message}")]
    Invalid { location: Location, message: String },

    #[error("could not {action} {}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },

    /// A vaulted file that could not be read or decrypted.
    #[error(transparent)]
    Vault(#[from] crate::vault::ReadError),

    /// ansible-playbook's words for a playbook path that is not a file.
    #[error("the playbook: {} could not be found", .0.display())]
    PlaybookNotFound(PathBuf),

    /// A problem with something other than a file: the command line, a configuration value.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub fn invalid(location: Location, message: impl Into<String>) -> Self {
        Error::Invalid {
            location,
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The closest name to `wanted` among `candidates`, if one is close enough to suggest.
pub fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(wanted, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// " (did you mean 'x'?)" or nothing.
pub fn did_you_mean<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(wanted, candidates)
        .map(|c| format!(" (did you mean '{c}'?)"))
        .unwrap_or_default()
}
