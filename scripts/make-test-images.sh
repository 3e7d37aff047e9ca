#!/usr/bin/env bash
# Makes the small image fixtures of the image engine's tests
# (tests/fixtures/images/). They are committed, so tests need no tools;
# run this only to change them. Needs ImageMagick 6 (`convert`) and
# exiftool: apt-get install -y imagemagick libimage-exiftool-perl
#
#   display.png         48x72 portrait, four coloured quadrants: the reference
#   orient-N.jpg        that picture stored as a camera with EXIF orientation
#                       N (1-8) would store it, with GPS and camera tags
#   cmyk.jpg            display.png as an Adobe (inverted) CMYK JPEG
#   rgb16.png           a 16-bit RGB gradient, and rgba16.png with 16-bit alpha
#   rgb16-ref.png       the 8-bit reference of rgb16.png
set -euo pipefail
cd "$(dirname "$0")/../tests/fixtures/images"
CONVERT=/usr/bin/convert
[ -x "$CONVERT" ] || CONVERT=convert

# Quadrants: red top-left, green top-right, blue bottom-left, yellow bottom-right.
$CONVERT -size 24x36 xc:'#e01010' xc:'#10c010' +append \
  \( -size 24x36 xc:'#1010e0' xc:'#e0e010' +append \) -append \
  +repage -define png:exclude-chunks=date,time display.png

# The stored picture is the display one under the inverse of the transform
# that orientation N asks the viewer to apply.
inverse=( "" "" "-flop" "-rotate 180" "-flip" "-transpose" "-rotate -90" "-transverse" "-rotate 90" )
for n in 1 2 3 4 5 6 7 8; do
  # shellcheck disable=SC2086
  $CONVERT display.png ${inverse[$n]} -quality 95 -sampling-factor 1x1 orient-$n.jpg
  exiftool -q -overwrite_original -Orientation#=$n \
    -Make=TestCam -Model='TestCam GPS-1' \
    -GPSLatitude=48.8584 -GPSLatitudeRef=N -GPSLongitude=2.2945 -GPSLongitudeRef=E \
    orient-$n.jpg
done

$CONVERT display.png -colorspace CMYK -quality 95 -sampling-factor 1x1 cmyk.jpg

$CONVERT -size 64x48 gradient:'#000000-#ffffff' \( -size 48x64 gradient:'#ff0000-#0000ff' -rotate 90 \) \
  -compose Multiply -composite -depth 16 -define png:exclude-chunks=date,time PNG48:rgb16.png
$CONVERT rgb16.png -depth 8 -define png:exclude-chunks=date,time PNG24:rgb16-ref.png
$CONVERT rgb16.png \( -size 48x64 gradient:white-black -rotate 90 \) -alpha off \
  -compose CopyOpacity -composite -depth 16 -define png:exclude-chunks=date,time PNG64:rgba16.png
# bomb.png: a PNG whose header says 40000 x 40000 (6.4 GB decoded) in a few KB;
# its data is never reached, so its CRCs are left zero.
python3 - <<'PY'
import struct
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + b"\0\0\0\0"
ihdr = struct.pack(">II", 40000, 40000) + bytes([8, 6, 0, 0, 0])
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"\x78\x9c" * 1000) + chunk(b"IEND", b"")
open("bomb.png", "wb").write(png)
PY
ls -l
