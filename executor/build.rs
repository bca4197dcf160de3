//! Compiles `cpp/`, the pieces of the executor that need DuckDB's C++ API (what
//! a prepared statement touches, as DuckDB bound and planned it; inserting an
//! Arrow stream with DuckDB's parallel Arrow scan), against the headers of the
//! exact DuckDB sources the `libduckdb-sys` crate bundles. The headers come
//! from that crate's source archive, not from its build directory: Cargo
//! does not run its build script before this one.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let sources = ["cpp/statement_uses.cpp", "cpp/insert_arrow.cpp"];
    for source in sources {
        println!("cargo:rerun-if-changed={source}");
    }
    println!("cargo:rerun-if-changed=build.rs");

    let (package, version, lock) = libduckdb_sys();
    // A new DuckDB is a new libduckdb-sys in Cargo.lock: its headers then, in a
    // directory of their own.
    println!("cargo:rerun-if-changed={}", lock.display());
    let archive = package.join("duckdb.tar.gz");
    println!("cargo:rerun-if-changed={}", archive.display());
    let headers = out.join(format!("libduckdb-sys-{version}"));
    let include = headers.join("duckdb/src/include");
    if !include.exists() {
        // Unpacked aside, then moved into place whole: never half the headers.
        let partial = out.join("headers.partial");
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial).expect("a directory for the headers");
        unpack_headers(&archive, &partial);
        std::fs::rename(&partial, &headers).expect("the headers moved into place");
    }

    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .files(sources)
        .include(&include)
        // As libduckdb-sys compiles DuckDB when its profile has no debug
        // assertions (this workspace's profiles never give dependencies any).
        .define("NDEBUG", None)
        .warnings(true)
        .flag_if_supported("-Wno-unused-parameter")
        .compile("openduck_executor_cpp");
}

/// The directory and version of the `libduckdb-sys` package this workspace
/// locked, and the lock file.
fn libduckdb_sys() -> (PathBuf, String, PathBuf) {
    let metadata = cargo_metadata(true).or_else(|offline| {
        // A build of one package may not have fetched every package of the
        // workspace that `cargo metadata` resolves.
        cargo_metadata(false).map_err(|online| format!("{offline}\n{online}"))
    });
    let metadata = metadata.unwrap_or_else(|error| panic!("cargo metadata failed: {error}"));
    let packages: Vec<&serde_json::Value> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|package| package["name"] == "libduckdb-sys")
        .collect();
    let [package] = packages[..] else {
        panic!(
            "expected one libduckdb-sys among the packages, found {}",
            packages.len()
        );
    };
    let manifest_path = package["manifest_path"].as_str().expect("a manifest path");
    let version = package["version"].as_str().expect("a version").to_string();
    let root = metadata["workspace_root"].as_str().expect("a workspace root");
    (
        Path::new(manifest_path)
            .parent()
            .expect("a package directory")
            .to_path_buf(),
        version,
        Path::new(root).join("Cargo.lock"),
    )
}

/// `cargo metadata` of this workspace, for the platform being built.
fn cargo_metadata(offline: bool) -> Result<serde_json::Value, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let mut command = Command::new(cargo);
    command
        .args(["metadata", "--format-version", "1", "--filter-platform"])
        .arg(std::env::var("TARGET").expect("TARGET"))
        .arg("--manifest-path")
        .arg(&manifest);
    if offline {
        command.arg("--offline");
    }
    let output = command.output().map_err(|error| format!("cannot run cargo: {error}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    serde_json::from_slice(&output.stdout).map_err(|error| format!("cargo metadata's JSON: {error}"))
}

/// Unpacks `duckdb/src/include` of the archive into `out`.
fn unpack_headers(archive: &Path, out: &Path) {
    let file = File::open(archive).unwrap_or_else(|error| panic!("cannot open {}: {error}", archive.display()));
    let mut entries = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in entries.entries().expect("a tar archive") {
        let mut entry = entry.expect("an archive entry");
        let path = entry.path().expect("an entry path").into_owned();
        if path.starts_with("duckdb/src/include") {
            entry.unpack_in(out).expect("unpacked header");
        }
    }
}
