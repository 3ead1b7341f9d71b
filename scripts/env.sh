# Sourced by the other scripts: one cargo target directory outside the clone,
# so fresh clones (CI) reuse earlier builds, and the faster linker when present.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/entente/target}
if command -v mold >/dev/null 2>&1 && [ -z "${RUSTFLAGS:-}" ]; then
  export RUSTFLAGS="-C link-arg=-fuse-ld=mold"
fi
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
