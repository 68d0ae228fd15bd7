"""CDN deliveries as their vendors send them: Cloudflare Logpush lines and a signed Vercel
drain request."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

LINES = (Path(__file__).parents[1] / "data" / "cdn" / "cloudflare-logpush.ndjson").read_bytes()


SECRET = "drain-secret-0123456789"


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return {"x-vercel-signature": signature, "Content-Type": "application/json"}
