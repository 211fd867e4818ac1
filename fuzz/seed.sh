#!/usr/bin/env bash
# Build the fuzz corpora: the committed seeds of fuzz/seeds/<target>, and from the shared reference
# recordings, which sit beside the repository:
#   ../shared/protocol/transcripts/*.jsonl -> corpus/frame_decode: the text of every frame received
#   ../shared/claude/*.jsonl               -> corpus/stream_json: every line, and every whole file
# Frames over 8 KiB (the 65,536-character chunks of a long line) are left out: libFuzzer sizes its
# inputs after the largest seed, and small inputs mutate faster. Run from anywhere; needs python3.
set -euo pipefail
fuzz_dir="$(cd "$(dirname "$0")" && pwd)"
shared="${SHARED:-$fuzz_dir/../../shared}"

for seeds in "$fuzz_dir"/seeds/*/; do
  [ -d "$seeds" ] || continue
  target="$(basename "$seeds")"
  mkdir -p "$fuzz_dir/corpus/$target"
  cp "$seeds"* "$fuzz_dir/corpus/$target/"
  echo "$target: $(ls "$seeds" | wc -l) committed seeds"
done

[ -d "$shared/protocol/transcripts" ] && [ -d "$shared/claude" ] || {
  echo "error: no shared recordings at $shared (set SHARED=<dir>)" >&2
  exit 1
}

python3 - "$shared" "$fuzz_dir/corpus" <<'PY'
import json, pathlib, sys

shared, corpus = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
MAX = 8192

frames = corpus / "frame_decode"
frames.mkdir(parents=True, exist_ok=True)
kept = skipped = 0
for path in sorted((shared / "protocol" / "transcripts").glob("*.jsonl")):
    for n, line in enumerate(path.read_text().splitlines()):
        rec = json.loads(line)
        if rec.get("dir") != "recv" or "frame" not in rec:
            continue
        # The exact wire text where it was recorded, else the frame as services write it
        # (compact, members in order, non-ASCII as it is).
        text = rec.get("wire_text")
        if text is None:
            frame = rec["frame"]
            text = frame if rec.get("raw") else json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
        data = text.encode()
        if len(data) > MAX:
            skipped += 1
            continue
        (frames / f"{path.stem}-{n}").write_bytes(data)
        kept += 1
print(f"frame_decode: {kept} frames ({skipped} over {MAX} bytes left out)")

lines = corpus / "stream_json"
lines.mkdir(parents=True, exist_ok=True)
count = 0
for path in sorted((shared / "claude").glob("*.jsonl")):
    text = path.read_text()
    (lines / f"{path.stem}-all").write_text(text)
    for n, line in enumerate(text.splitlines()):
        (lines / f"{path.stem}-{n}").write_text(line)
    count += 1
print(f"stream_json: {count} files, each whole and line by line")
PY
