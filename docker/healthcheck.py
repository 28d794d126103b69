"""HEALTHCHECK of the images: exit 0 when GET <url> answers 2xx within 3 s (no curl in slim bases)."""

import sys
import urllib.request

try:
    with urllib.request.urlopen(sys.argv[1], timeout=3) as response:
        sys.exit(0 if 200 <= response.status < 300 else 1)
except Exception as error:  # any failure means "unhealthy", said in one line
    print(f"unhealthy: {error}", file=sys.stderr)
    sys.exit(1)
