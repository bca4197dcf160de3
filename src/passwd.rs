//! `openduck passwd`: adds a user to a users file, or changes their password.

use std::io::BufRead;
use std::path::PathBuf;

use clap::Args;
use openduck_flight_sql::{hash_password, UserAccounts};

#[derive(Debug, Args)]
pub(crate) struct PasswdArgs {
    /// The users file to update (created when missing).
    #[arg(long, env = "OPENDUCK_USERS")]
    users: PathBuf,

    /// The user's name.
    name: String,
}

/// Reads the password from the first line of standard input, so that it never
/// shows in the process list or shell history.
pub(crate) async fn run(args: PasswdArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.name.is_empty() || args.name.contains([':', '\n', '\r']) {
        return Err("a user name must be non-empty and contain no ':' or line breaks".into());
    }
    let mut password = String::new();
    std::io::stdin().lock().read_line(&mut password)?;
    let password = password.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err("no password on standard input".into());
    }
    let existing = match std::fs::read_to_string(&args.users) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error.into()),
    };
    UserAccounts::parse(&existing).map_err(|message| format!("{}: {message}", args.users.display()))?;
    let prefix = format!("{}:", args.name);
    let mut lines: Vec<String> = existing
        .lines()
        .filter(|line| !line.trim_start().starts_with(&prefix))
        .map(str::to_string)
        .collect();
    lines.push(format!("{prefix}{}", hash_password(password)));
    // Write a sibling file and rename it over the old one: never a half-written file.
    let temporary = args.users.with_extension("tmp");
    std::fs::write(&temporary, lines.join("\n") + "\n")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&temporary, &args.users)?;
    eprintln!("user {} saved in {}", args.name, args.users.display());
    Ok(())
}
