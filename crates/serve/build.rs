//! Generates the gRPC services of TensorFlow Serving (`PredictionService`,
//! `ModelService`) from the workspace's `proto/` folder with protox and
//! tonic-prost-build. Every message is `sparky-proto`'s: only the service
//! code is generated here.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.join("../../proto");
    let apis = root.join("tensorflow_serving/apis");
    let files = [apis.join("prediction_service.proto"), apis.join("model_service.proto")];
    println!("cargo:rerun-if-changed={}", root.display());
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&root]).unwrap_or_else(|e| panic!("compiling proto/: {e}"));
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(false)
        .extern_path(".tensorflow", "::sparky_proto::tensorflow")
        .compile_fds(fds)
        .unwrap_or_else(|e| panic!("generating the gRPC services: {e}"));
}
