//! Compiles `proto/openduck/v1/*.proto` and `proto/arrow/flight/session.proto` with protox (pure Rust, so no `protoc` is
//! needed) and generates the prost types into `OUT_DIR`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/openduck/v1/ticket.proto",
        "proto/openduck/v1/executor.proto",
        "proto/arrow/flight/session.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
