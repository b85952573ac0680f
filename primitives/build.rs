//! Compiles `proto/*.proto` with protox (pure Rust, no system `protoc`) and prost-build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["synctree.proto"], ["proto"])?;
    prost_build::Config::new()
        .bytes(["."])
        // Hand-written in src/wire.rs (same wire format) so that a sender can hand
        // it entries it already encoded.
        .extern_path(".synctree.v1.SnapshotPage", "crate::wire::SnapshotPage")
        .compile_fds(descriptors)?;
    Ok(())
}
