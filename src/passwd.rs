//! `openduck passwd`: adds a user to a users file, or changes their password.

use std::io::BufRead;
use std::path::PathBuf;

use clap::Args;
use openduck_api::Grants;
use openduck_flight_sql::{account_line, is_reserved, UserAccounts};

#[derive(Debug, Args)]
pub(crate) struct PasswdArgs {
    /// The users file to update (created when missing).
    #[arg(long, env = "OPENDUCK_USERS")]
    users: PathBuf,

    /// The user may only query: statements that change anything are
    /// refused with PERMISSION_DENIED. Without it or --read-write, a user
    /// keeps the role they had (a new user may do anything).
    #[arg(long, env = "OPENDUCK_READ_ONLY", conflicts_with = "read_write")]
    read_only: bool,

    /// The user may do anything (undoes --read-only).
    #[arg(long, env = "OPENDUCK_READ_WRITE")]
    read_write: bool,

    /// The user may use only these databases (comma-separated): statements
    /// that read or change any other, and catalog listings of others, are
    /// refused or left out. Without it or --all-databases, a user keeps
    /// the grants they had (a new user may use every database).
    #[arg(
        long,
        env = "OPENDUCK_DATABASES",
        value_delimiter = ',',
        conflicts_with = "all_databases"
    )]
    databases: Option<Vec<String>>,

    /// The user may use every database (undoes --databases).
    #[arg(long, env = "OPENDUCK_ALL_DATABASES")]
    all_databases: bool,

    /// The user's name.
    name: String,
}

/// Reads the password from the first line of standard input, so that it never
/// shows in the process list or shell history.
pub(crate) async fn run(args: PasswdArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.name.is_empty() || args.name.contains([':', '\n', '\r']) {
        return Err("a user name must be non-empty and contain no ':' or line breaks".into());
    }
    if is_reserved(&args.name) {
        return Err(format!("the user name {:?} is reserved", args.name).into());
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
    let accounts = UserAccounts::parse(&existing).map_err(|message| format!("{}: {message}", args.users.display()))?;
    let mut role = accounts.role(&args.name).cloned().unwrap_or_default();
    role.read_only = args.read_only || (role.read_only && !args.read_write);
    if args.all_databases {
        role.grants = None;
    }
    if let Some(databases) = args.databases {
        let databases: Vec<String> = databases.into_iter().map(|name| name.trim().to_string()).collect();
        if databases
            .iter()
            .any(|name| name.is_empty() || name.contains([':', ',', '\n', '\r']))
        {
            return Err("--databases takes names separated by ',', each non-empty, with no ':' or line breaks".into());
        }
        role.grants = Some(Grants::new(databases));
    }
    let prefix = format!("{}:", args.name);
    let mut lines: Vec<String> = existing
        .lines()
        .filter(|line| !line.trim_start().starts_with(&prefix))
        .map(str::to_string)
        .collect();
    lines.push(account_line(&args.name, password, &role));
    // Write a sibling file and rename it over the old one: never a half-written file.
    let temporary = args.users.with_extension("tmp");
    std::fs::write(&temporary, lines.join("\n") + "\n")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&temporary, &args.users)?;
    let read_only = if role.read_only { ", read-only" } else { "" };
    let databases = role
        .grants
        .as_ref()
        .map_or_else(|| "every database".to_string(), |grants| format!("databases {grants}"));
    eprintln!(
        "user {} ({databases}{read_only}) saved in {}",
        args.name,
        args.users.display()
    );
    Ok(())
}
