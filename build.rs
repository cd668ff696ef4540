//! Compiles the gRPC protos with protox (pure Rust): a fresh machine needs no protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = protox::compile(["ebb/v1/coord.proto", "ebb/v1/control.proto"], ["proto"])?;
    // Ordered maps: ebbctl prints them, and tables must not reshuffle between rows.
    tonic_prost_build::configure()
        .btree_map(".")
        // Parameter blocks are sliced out of the received buffer instead of copied.
        .bytes(".ebb.v1.Block.values")
        .compile_fds(files)?;
    Ok(())
}
