//! Compiles every `.proto` under the workspace's `proto/` folder with protox
//! (pure Rust) and prost-build, so no `protoc` is ever needed.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|x| x == "proto") {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.join("../../proto");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &mut files);
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&root]).unwrap_or_else(|e| panic!("compiling proto/: {e}"));
    let mut config = prost_build::Config::new();
    // Maps become BTreeMaps: the same message always encodes to the same bytes.
    config.btree_map(["."]);
    config.compile_fds(fds).unwrap_or_else(|e| panic!("generating Rust for proto/: {e}"));
}
