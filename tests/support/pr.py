"""A pull request as the GitHub CLI prints it: ``gh pr view --json ...`` and ``gh pr diff``."""

from __future__ import annotations

from typing import Any

PR_JSON: dict[str, Any] = {
    "title": "Add a login rate limit",
    "body": "Limits login attempts per IP to 5 a minute.",
    "additions": 14,
    "deletions": 2,
    "files": [
        {"path": "app/auth.py", "additions": 12, "deletions": 2},
        {"path": "docs/security.md", "additions": 2, "deletions": 0},
    ],
}

PR_DIFF = """diff --git a/app/auth.py b/app/auth.py
index 1111111..2222222 100644
--- a/app/auth.py
+++ b/app/auth.py
@@ -1,6 +1,16 @@
 import time
+ATTEMPTS: dict[str, list[float]] = {}
+
+def allowed(ip: str) -> bool:
+    now = time.time()
+    recent = [t for t in ATTEMPTS.get(ip, []) if now - t < 60]
+    ATTEMPTS[ip] = recent + [now]
+    return len(recent) < 5
+
 def login(user, password, ip):
-    return check(user, password)
+    if not allowed(ip):
+        raise PermissionError("too many attempts")
+    return check(user, password)
diff --git a/docs/security.md b/docs/security.md
index 3333333..4444444 100644
--- a/docs/security.md
+++ b/docs/security.md
@@ -10,0 +11,2 @@
+## Rate limits
+Login attempts are limited to 5 a minute per IP address.
"""
