#!/usr/bin/env bash
# Makes the files in sample-media/ from ffmpeg's built-in test sources (no third-party
# content). Run from anywhere: `scripts/make-sample-media.sh`. Needs ffmpeg (Debian's
# package is enough: it has libx264, libvpx-vp9, libopus, libmp3lame and libwebp).
#
# Outputs are written with bit-exact flags and no metadata, so the same ffmpeg version
# makes the same bytes every time.
set -euo pipefail

out="$(cd "$(dirname "$0")/.." && pwd)/sample-media"
mkdir -p "$out"

seconds=10
size=640x360
rate=25
common=(-hide_banner -loglevel error -y)
# Output options: no metadata, bit-exact muxing.
exact=(-map_metadata -1 -fflags +bitexact)
video_src=(-f lavfi -i "testsrc2=size=${size}:rate=${rate}:duration=${seconds}")
audio_src=(-f lavfi -i "sine=frequency=440:sample_rate=48000:duration=${seconds}")

# H.264/AAC in MP4, moov atom first (faststart) so playback starts before the download ends.
ffmpeg "${common[@]}" "${video_src[@]}" "${audio_src[@]}" \
  -c:v libx264 -preset medium -profile:v main -pix_fmt yuv420p -b:v 800k -g 50 \
  -c:a aac -b:a 96k -flags:v +bitexact -flags:a +bitexact \
  -movflags +faststart "${exact[@]}" "$out/test-pattern.mp4"

# The same MP4 with its moov atom at the end (no faststart), as many cameras and
# tools write it: a player must fetch the end first with a suffix or late range.
ffmpeg "${common[@]}" -i "$out/test-pattern.mp4" -c copy "${exact[@]}" "$out/test-pattern-moov-at-end.mp4"

# VP9/Opus in WebM.
ffmpeg "${common[@]}" "${video_src[@]}" "${audio_src[@]}" \
  -c:v libvpx-vp9 -b:v 500k -deadline good -cpu-used 4 -row-mt 1 -g 50 \
  -c:a libopus -b:a 64k -flags:v +bitexact -flags:a +bitexact "${exact[@]}" \
  "$out/test-pattern.webm"

# MP3 and Ogg/Opus audio.
ffmpeg "${common[@]}" "${audio_src[@]}" -c:a libmp3lame -b:a 128k -flags:a +bitexact \
  -write_xing 1 "${exact[@]}" "$out/tone.mp3"
ffmpeg "${common[@]}" "${audio_src[@]}" -c:a libopus -b:a 64k -flags:a +bitexact "${exact[@]}" \
  "$out/tone.ogg"

# Still images: one frame of the same pattern.
still=(-f lavfi -i "testsrc2=size=${size}:rate=1:duration=1")
ffmpeg "${common[@]}" "${still[@]}" -frames:v 1 -q:v 3 -flags:v +bitexact "${exact[@]}" "$out/test-pattern.jpg"
ffmpeg "${common[@]}" "${still[@]}" -frames:v 1 -flags:v +bitexact "${exact[@]}" "$out/test-pattern.png"
ffmpeg "${common[@]}" "${still[@]}" -frames:v 1 -c:v libwebp -quality 80 -flags:v +bitexact "${exact[@]}" \
  "$out/test-pattern.webp"

ls -l "$out"
