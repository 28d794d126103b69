"""Write .env from .env.example, replacing every `change-me` with a fresh random secret.

Run by `make docker-up` (and `make docker-build`) when .env does not exist yet; an existing .env is
never touched, so its secrets stay those the stack's volumes were created with.
"""

import secrets
import sys
from pathlib import Path


def main(example: str = ".env.example", target: str = ".env") -> int:
    out = Path(target)
    if out.exists():
        return 0
    lines = []
    for line in Path(example).read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#") and value.strip() == "change-me":
            # 32 bytes: more than the UI's minimum for a token (16 characters) and a session secret (32)
            line = f"{key}={secrets.token_urlsafe(32)}"
        lines.append(line)
    out.write_text("\n".join(lines) + "\n")
    out.chmod(0o600)
    print(f"wrote {out} from {example} with fresh secrets (keep it; never commit it)")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
