"""Times zigpy's parse_ota_image + validate_ota_image over the OTA corpus, for comparison with the
criterion benchmark `benches/ota_parse.rs` (same files, same work: parse, then check payloads).

    /tmp/refvenv/bin/python tests/vectors/bench_zigpy_ota.py [IMAGES_DIR] [REPEATS]

Prints the best time of REPEATS passes over all files (each file read once, up front).
"""

import pathlib
import sys
import time

from zigpy.ota import validators
from zigpy.ota.image import parse_ota_image

here = pathlib.Path(__file__).resolve().parent
images = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else here / "../../../shared/testdata/ota-corpus/images"
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 20

files = sorted((p.name, p.read_bytes()) for p in images.iterdir() if p.is_file())
total = sum(len(data) for _, data in files)


def one_pass():
    for _, data in files:
        try:
            image, _rest = parse_ota_image(data)
            validators.validate_ota_image(image)
        except (ValueError, validators.ValidationError):
            pass


best = float("inf")
for _ in range(repeats):
    start = time.perf_counter()
    one_pass()
    best = min(best, time.perf_counter() - start)

print(f"zigpy: {len(files)} files, {total} bytes, best of {repeats}: {best * 1e3:.3f} ms per pass")
