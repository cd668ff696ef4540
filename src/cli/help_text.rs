//! Every flag a user can see explains itself: the check both binaries' tests run over
//! their command trees.

/// Each visible flag, positional and subcommand under `cmd` that has no help text, as
/// its path (`ebb bench plan nodes`).
pub fn undocumented(cmd: &clap::Command) -> Vec<String> {
    let mut out = Vec::new();
    walk(cmd, cmd.get_name(), &mut out);
    out
}

fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if arg.is_hide_set() || id == "help" || id == "version" {
            continue;
        }
        if arg.get_help().is_none() && arg.get_long_help().is_none() {
            out.push(format!("{path} {id}"));
        }
    }
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let sub_path = format!("{path} {}", sub.get_name());
        if sub.get_about().is_none() && sub.get_long_about().is_none() {
            out.push(sub_path.clone());
        }
        walk(sub, &sub_path, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_flags_and_subcommands_without_help() {
        let cmd = clap::Command::new("t")
            .arg(clap::Arg::new("told").long("told").help("Has help."))
            .arg(clap::Arg::new("bare").long("bare"))
            .arg(clap::Arg::new("secret").long("secret").hide(true))
            .subcommand(clap::Command::new("quiet").arg(clap::Arg::new("x").long("x")));
        assert_eq!(undocumented(&cmd), ["t bare", "t quiet", "t quiet x"]);
    }
}
