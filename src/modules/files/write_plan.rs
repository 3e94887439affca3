//! The file writer's pure plan: from the wanted content and attributes and the destination's
//! observed state, what to do (nothing, only attributes, or write the content).

use super::write::{AttrChange, WriteRequest};
use crate::modules::util::PathState;
use crate::modules::ModuleError;
use crate::util::sha1_hex;

/// What converging the destination takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteAction {
    /// Content and attributes are right.
    Nothing,
    /// The content is right; these attributes are not.
    Attributes(Vec<AttrChange>),
    /// The content differs (or the path is absent, or a link to replace): write it, with its
    /// attributes, keeping a copy of the old file first when `backup`.
    Content { backup: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritePlan {
    /// The wanted content's sha1.
    pub checksum: String,
    pub action: WriteAction,
}

impl WritePlan {
    pub fn changed(&self) -> bool {
        self.action != WriteAction::Nothing
    }

    pub fn writes_content(&self) -> bool {
        matches!(self.action, WriteAction::Content { .. })
    }
}

/// The plan for writing `request` over a destination in `state` (a link's own state: it is
/// replaced; following it is the caller's observation).
pub fn plan(request: &WriteRequest, state: &PathState) -> Result<WritePlan, ModuleError> {
    if state.kind == "directory" {
        return Err(ModuleError::Failed(format!(
            "{} is a directory; name the file to write",
            request.dest
        )));
    }
    let checksum = sha1_hex(&request.content);
    let action = if !state.exists || state.checksum.as_deref() != Some(checksum.as_str()) {
        WriteAction::Content {
            backup: request.backup && state.exists,
        }
    } else {
        match request.attrs.differences(state) {
            changes if changes.is_empty() => WriteAction::Nothing,
            changes => WriteAction::Attributes(changes),
        }
    };
    Ok(WritePlan { checksum, action })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::files::write::Attributes;
    use crate::modules::util::{parse_probe, Mode};

    const HELLO_SHA1: &str = "f572d396fae9206628714fb2ce00f72e94f2258f";

    /// A recorded `present_state_command(…, true)` answer for a file holding "hello\n".
    fn hello_file(mode: &str) -> PathState {
        parse_probe(&format!(
            "regular file|{mode}|root|root|0|0|6|1700000000.0|1700000000.0|1700000000.0|2049|7|1|8|4096|0|0|'/etc/motd'\n{HELLO_SHA1}  -\n"
        ))
    }

    fn request(content: &str) -> WriteRequest {
        WriteRequest {
            dest: "/etc/motd".into(),
            content: content.as_bytes().to_vec(),
            attrs: Attributes::default(),
            backup: false,
            validate: None,
            force: true,
            follow: false,
        }
    }

    #[test]
    fn an_absent_destination_is_written_without_backup() {
        let mut r = request("hello\n");
        r.backup = true;
        let plan = plan(&r, &parse_probe("absent\n")).expect("a plan");
        assert_eq!(plan.checksum, HELLO_SHA1);
        assert_eq!(plan.action, WriteAction::Content { backup: false });
    }

    #[test]
    fn the_same_content_and_attributes_do_nothing() {
        let mut r = request("hello\n");
        r.attrs.mode = Some(Mode::Octal(0o644));
        let plan = plan(&r, &hello_file("644")).expect("a plan");
        assert_eq!(plan.action, WriteAction::Nothing);
        assert!(!plan.changed());
    }

    #[test]
    fn the_same_content_with_other_attributes_changes_only_those() {
        let mut r = request("hello\n");
        r.attrs = Attributes {
            mode: Some(Mode::Symbolic("o-r".into())),
            owner: Some("kiln".into()),
            group: Some("0".into()),
        };
        let plan = plan(&r, &hello_file("644")).expect("a plan");
        assert_eq!(
            plan.action,
            WriteAction::Attributes(vec![
                AttrChange::Owner("kiln".into()),
                AttrChange::Mode(0o640)
            ])
        );
        assert!(!plan.writes_content());
    }

    #[test]
    fn other_content_is_written_with_a_backup_when_asked() {
        let mut r = request("bye\n");
        r.backup = true;
        let plan = plan(&r, &hello_file("644")).expect("a plan");
        assert_eq!(plan.action, WriteAction::Content { backup: true });
    }

    #[test]
    fn a_link_is_replaced_and_a_directory_refused() {
        let link = parse_probe(
            "symbolic link|777|root|root|0|0|9|1700000000.0|1700000000.0|1700000000.0|2049|7|1|8|4096|0|0|'/etc/motd' -> '/run/motd'\n",
        );
        let plan = plan(&request("hello\n"), &link).expect("a plan");
        assert_eq!(plan.action, WriteAction::Content { backup: false });
        let directory = parse_probe("directory|755|root|root|0|0|4096|1700000000.0|1700000000.0|1700000000.0|2049|7|1|8|4096|0|0|'/etc/motd'\n");
        assert!(super::plan(&request("hello\n"), &directory).is_err());
    }
}
