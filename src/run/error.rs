//! Why the runner could not run a task's action on a host. Each message is shown to the user
//! as the task's failure (or, for the connection, as the host's unreachable message).

use super::target::TargetError;
use crate::connection::ConnectionError;
use crate::template::TemplateError;

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A templated keyword (`check_mode`, `environment`, `delegate_to`) failed to render.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The task's arguments or templated `action` failed to render; the message names the task.
    #[error("{location}: {source}")]
    TemplateAt {
        location: String,
        source: TemplateError,
    },
    /// A templated `action` names no module kiln knows.
    #[error("{location}: unknown module '{name}' in 'action'{suggestion}")]
    UnknownModule {
        location: String,
        name: String,
        suggestion: String,
    },
    #[error("'environment' must be a mapping, got {0}")]
    EnvironmentNotMapping(String),
    /// The delegate's inventory variables could not be read.
    #[error(transparent)]
    Inventory(#[from] crate::error::Error),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Connection(#[from] ConnectionError),
}
