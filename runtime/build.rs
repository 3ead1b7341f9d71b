//! Builds the web client (`web/`, with the Node.js and the npm packages
//! `scripts/setup` installs from its lockfile) and embeds it: the server
//! serves it from its own binary, with nothing fetched at run time.

use std::{env, path::PathBuf, process::Command};

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let web = manifest_dir.join("../web");
    for watched in ["src", "build.mjs", "package-lock.json"] {
        println!("cargo:rerun-if-changed={}", web.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=ENTENTE_NODE");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets it")).join("web");
    if !web.join("node_modules/esbuild").exists() {
        panic!(
            "the web client's build tools are not installed: run scripts/setup \
             (it runs `npm ci` in {})",
            web.display()
        );
    }
    let node = env::var("ENTENTE_NODE").unwrap_or_else(|_| "node".into());
    let status = Command::new(&node)
        .arg(web.join("build.mjs"))
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("could not run {node} to build the web client: {e}"));
    assert!(status.success(), "building the web client failed: {status}");

    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("manifest.json")).expect("build.mjs writes manifest.json"),
    )
    .expect("manifest.json is JSON");
    let mut code = String::from("pub static ASSETS: &[Asset] = &[\n");
    for file in manifest["files"].as_array().expect("files") {
        let path = out.join(file["path"].as_str().expect("path"));
        let text = |key: &str| file[key].as_str().expect(key).to_string();
        code.push_str(&format!(
            "    Asset {{ url: {url:?}, content_type: {ty:?}, immutable: {immutable}, etag: {etag:?}, \
             identity: include_bytes!({raw:?}), gzip: include_bytes!({gz:?}), brotli: include_bytes!({br:?}) }},\n",
            url = text("url"),
            ty = text("type"),
            immutable = file["immutable"].as_bool().expect("immutable"),
            etag = format!("\"{}\"", text("etag")),
            raw = path.display().to_string(),
            gz = format!("{}.gz", path.display()),
            br = format!("{}.br", path.display()),
        ));
    }
    code.push_str("];\n");
    std::fs::write(out.join("assets.rs"), code).expect("write assets.rs");
}
